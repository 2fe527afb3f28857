#include "platform/crypto.hpp"

#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

#include <openssl/evp.h>

namespace platform {

namespace {

// EVP calls on a valid context with a built-in digest fail only on allocation failure or a
// broken OpenSSL installation; neither leaves a hash we could return, so stop loudly.
void require(int result, const char* call) {
    if (result == 1) return;
    std::fprintf(stderr, "openssl_crypto: %s failed\n", call);
    std::abort();
}

const EVP_MD* message_digest(detail::evp_digest::algorithm kind) noexcept {
    return kind == detail::evp_digest::algorithm::sha256 ? EVP_sha256() : EVP_md5();
}

}  // namespace

namespace detail {

evp_digest::~evp_digest() { EVP_MD_CTX_free(context_); }

evp_digest::evp_digest(evp_digest&& other) noexcept
    : context_(std::exchange(other.context_, nullptr)),
      algorithm_(other.algorithm_),
      started_(std::exchange(other.started_, false)) {}

evp_digest& evp_digest::operator=(evp_digest&& other) noexcept {
    if (this != &other) {
        EVP_MD_CTX_free(context_);
        context_ = std::exchange(other.context_, nullptr);
        algorithm_ = other.algorithm_;
        started_ = std::exchange(other.started_, false);
    }
    return *this;
}

void evp_digest::start() {
    if (context_ == nullptr) {
        context_ = EVP_MD_CTX_new();
        if (context_ == nullptr) throw std::bad_alloc();
    }
    require(EVP_DigestInit_ex(context_, message_digest(algorithm_), nullptr), "EVP_DigestInit_ex");
    started_ = true;
}

void evp_digest::update(std::span<const std::uint8_t> bytes) {
    if (!started_) start();
    if (bytes.empty()) return;
    require(EVP_DigestUpdate(context_, bytes.data(), bytes.size()), "EVP_DigestUpdate");
}

void evp_digest::finish(std::span<std::uint8_t> digest) {
    if (!started_) start();
    unsigned int size = 0;
    assert(digest.size() == static_cast<std::size_t>(EVP_MD_get_size(message_digest(algorithm_))));
    require(EVP_DigestFinal_ex(context_, digest.data(), &size), "EVP_DigestFinal_ex");
    assert(size == digest.size());
    started_ = false;  // the next update() or finish() starts a fresh stream
}

}  // namespace detail

toastyfs::sha256_digest openssl_crypto::sha256(std::span<const std::uint8_t> bytes) {
    toastyfs::sha256_digest digest{};
    unsigned int size = 0;
    static constexpr std::uint8_t nothing = 0;  // EVP_Digest wants a valid pointer
    require(
        EVP_Digest(bytes.empty() ? &nothing : bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(), nullptr),
        "EVP_Digest");
    assert(size == digest.size());
    return digest;
}

}  // namespace platform
