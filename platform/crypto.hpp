// platform::openssl_crypto: the production Crypto policy (see toastyfs::crypto in
// include/toastyfs/types.hpp). SHA-256 and MD5 through OpenSSL's EVP interface.
//
// No OpenSSL header leaks from here: each context owns an opaque EVP_MD_CTX (OpenSSL's
// `struct evp_md_ctx_st`, declared but never defined in this header).
#pragma once

#include <cstdint>
#include <span>

#include "toastyfs/types.hpp"

struct evp_md_ctx_st;

namespace platform {

namespace detail {

/// One EVP digest stream. Allocates its EVP_MD_CTX on first use, so default construction and
/// moves never allocate and a moved-from context is simply fresh again.
class evp_digest {
public:
    enum class algorithm : std::uint8_t { sha256, md5 };

    explicit evp_digest(algorithm kind) noexcept : algorithm_(kind) {}
    ~evp_digest();
    evp_digest(evp_digest&& other) noexcept;
    evp_digest& operator=(evp_digest&& other) noexcept;
    evp_digest(const evp_digest&) = delete;
    evp_digest& operator=(const evp_digest&) = delete;

    void update(std::span<const std::uint8_t> bytes);
    /// Writes the digest (32 bytes for SHA-256, 16 for MD5) and resets the stream.
    void finish(std::span<std::uint8_t> digest);

private:
    void start();

    evp_md_ctx_st* context_ = nullptr;
    algorithm algorithm_;
    bool started_ = false;  // a stream is open in context_
};

}  // namespace detail

struct openssl_crypto {
    class sha256_context {
    public:
        void update(std::span<const std::uint8_t> bytes) { digest_.update(bytes); }
        toastyfs::sha256_digest finish() {
            toastyfs::sha256_digest digest{};
            digest_.finish(digest);
            return digest;
        }

    private:
        detail::evp_digest digest_{detail::evp_digest::algorithm::sha256};
    };

    class md5_context {
    public:
        void update(std::span<const std::uint8_t> bytes) { digest_.update(bytes); }
        toastyfs::md5_digest finish() {
            toastyfs::md5_digest digest{};
            digest_.finish(digest);
            return digest;
        }

    private:
        detail::evp_digest digest_{detail::evp_digest::algorithm::md5};
    };

    /// One-shot SHA-256 of one buffer (no context kept).
    static toastyfs::sha256_digest sha256(std::span<const std::uint8_t> bytes);
};
static_assert(toastyfs::crypto<openssl_crypto>);

}  // namespace platform
