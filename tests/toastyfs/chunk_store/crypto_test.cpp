#define BOOST_TEST_MODULE crypto
// The header under test comes first: proves it is self-contained.
#include "platform/crypto.hpp"

// ... and that it keeps OpenSSL to itself.
#if defined(OPENSSL_VERSION_NUMBER) || defined(OPENSSL_EVP_H)
#error "platform/crypto.hpp must not include OpenSSL headers"
#endif

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vsr/random.hpp"

namespace {

using platform::openssl_crypto;

std::span<const std::uint8_t> bytes_of(std::string_view text) {
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

template <typename Digest>
std::string hex(const Digest& digest) {
    return toastyfs::to_hex(digest);
}

const std::string million_a(1'000'000, 'a');

}  // namespace

BOOST_AUTO_TEST_CASE(sha256_known_vectors) {
    BOOST_TEST(hex(openssl_crypto::sha256({})) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    BOOST_TEST(hex(openssl_crypto::sha256(bytes_of("abc"))) ==
               "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    BOOST_TEST(hex(openssl_crypto::sha256(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
               "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    BOOST_TEST(hex(openssl_crypto::sha256(bytes_of(million_a))) ==
               "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(sha256_context_known_vectors) {
    openssl_crypto::sha256_context context;
    BOOST_TEST(hex(context.finish()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    context.update(bytes_of("abc"));
    BOOST_TEST(hex(context.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    for (int i = 0; i < 1000; i++) {
        context.update(bytes_of(std::string_view(million_a).substr(0, 1000)));
    }
    BOOST_TEST(hex(context.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(md5_known_vectors) {
    openssl_crypto::md5_context context;
    BOOST_TEST(hex(context.finish()) == "d41d8cd98f00b204e9800998ecf8427e");
    context.update(bytes_of("abc"));
    BOOST_TEST(hex(context.finish()) == "900150983cd24fb0d6963f7d28e17f72");
    context.update(bytes_of("message digest"));
    BOOST_TEST(hex(context.finish()) == "f96b697d7cb7938d525a2f31aaf161d0");
    context.update(bytes_of(million_a));
    BOOST_TEST(hex(context.finish()) == "7707d6ae4e027c70eea2a935c2296f21");
}

BOOST_AUTO_TEST_CASE(incremental_equals_one_shot_over_random_splits) {
    vsr::xoshiro256 random(7);
    std::vector<std::uint8_t> data(300'000);
    for (auto& byte : data) byte = static_cast<std::uint8_t>(random.next_u64());
    const auto expected = openssl_crypto::sha256(data);
    openssl_crypto::sha256_context context;  // reused across every round
    for (int round = 0; round < 20; round++) {
        const std::size_t size = vsr::uniform_below(random, data.size() + 1);
        const std::span<const std::uint8_t> prefix(data.data(), size);
        std::size_t at = 0;
        while (at < size) {
            // Mostly small pieces, sometimes empty, sometimes large.
            const std::size_t piece = vsr::uniform_below(random, 4) == 0
                                          ? vsr::uniform_below(random, size - at + 1)
                                          : std::min<std::size_t>(vsr::uniform_below(random, 100), size - at);
            context.update(prefix.subspan(at, piece));
            at += piece;
        }
        BOOST_TEST(context.finish() == openssl_crypto::sha256(prefix));
    }
    context.update(data);
    BOOST_TEST(context.finish() == expected);
}

BOOST_AUTO_TEST_CASE(contexts_move_with_their_stream_and_moved_from_ones_start_fresh) {
    openssl_crypto::sha256_context first;
    first.update(bytes_of("a"));
    openssl_crypto::sha256_context second = std::move(first);
    second.update(bytes_of("bc"));
    BOOST_TEST(second.finish() == openssl_crypto::sha256(bytes_of("abc")));
    first.update(bytes_of("abc"));  // NOLINT(bugprone-use-after-move): documented as fresh
    BOOST_TEST(first.finish() == openssl_crypto::sha256(bytes_of("abc")));

    openssl_crypto::md5_context md5;
    md5.update(bytes_of("ab"));
    openssl_crypto::md5_context other;
    other = std::move(md5);
    other.update(bytes_of("c"));
    BOOST_TEST(hex(other.finish()) == "900150983cd24fb0d6963f7d28e17f72");
}

BOOST_AUTO_TEST_CASE(different_inputs_give_different_digests) {
    BOOST_TEST(openssl_crypto::sha256(bytes_of("abc")) != openssl_crypto::sha256(bytes_of("abd")));
    BOOST_TEST(openssl_crypto::sha256(bytes_of("")) != openssl_crypto::sha256(bytes_of(std::string(1, '\0'))));
}
