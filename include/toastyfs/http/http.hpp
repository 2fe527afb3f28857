// The HTTP/1.1 layer of ToastyFS: pure, header-only, standard library only (no sockets, no OS
// headers), shared by the proxy, the S3 listener and the fuzzers. Input from the network never
// asserts: it yields an error value carrying the status to answer.
//
//   error.hpp           error{status, reason}, result<T>
//   fields.hpp          ordered header fields, case-insensitive lookup
//   request_parser.hpp  incremental request parser (head and de-chunked body, streaming)
//   response.hpp        response heads, reason phrases, chunked frames
//   uri.hpp             request targets, object keys, query parameters, percent-encoding
//   range.hpp           Range: bytes=... resolved against an object size
//   etag.hpp            entity tags, If-Match / If-None-Match
//   date.hpp            IMF-fixdate and ISO 8601 from Unix nanoseconds, HTTP-date parsing
//   json.hpp            JSON string escaping
#pragma once

#include "toastyfs/http/date.hpp"
#include "toastyfs/http/error.hpp"
#include "toastyfs/http/etag.hpp"
#include "toastyfs/http/fields.hpp"
#include "toastyfs/http/json.hpp"
#include "toastyfs/http/range.hpp"
#include "toastyfs/http/request_parser.hpp"
#include "toastyfs/http/response.hpp"
#include "toastyfs/http/uri.hpp"
