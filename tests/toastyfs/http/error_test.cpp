#define BOOST_TEST_MODULE http_error
// The header under test comes first: proves it is self-contained.
#include "toastyfs/http/error.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <memory>
#include <string>

namespace {
namespace http = toastyfs::http;
}  // namespace

BOOST_AUTO_TEST_CASE(result_holds_a_value) {
    http::result<std::string> r(std::string("key"));
    BOOST_TEST(r.has_value());
    BOOST_TEST(static_cast<bool>(r));
    BOOST_TEST(*r == "key");
    BOOST_TEST(r->size() == 3u);
    const std::string moved = std::move(r).value();
    BOOST_TEST(moved == "key");
}

BOOST_AUTO_TEST_CASE(result_holds_an_error) {
    const http::result<int> r(http::error{414, "too long"});
    BOOST_TEST(!r.has_value());
    BOOST_TEST(r.error().status == 414);
    BOOST_TEST(r.error().reason == "too long");
    BOOST_TEST((r.error() == http::error{414, "too long"}));
    BOOST_TEST(!(r.error() == http::error{400, "too long"}));
}

BOOST_AUTO_TEST_CASE(result_of_move_only_type) {
    http::result<std::unique_ptr<int>> r(std::make_unique<int>(7));
    BOOST_TEST(**r == 7);
}

BOOST_AUTO_TEST_CASE(void_result) {
    const http::result<void> ok;
    BOOST_TEST(ok.has_value());
    const http::result<void> failed(http::error{500, "bug"});
    BOOST_TEST(!failed.has_value());
    BOOST_TEST(failed.error().status == 500);
}
