#define BOOST_TEST_MODULE odr
// The umbrella header first: proves it is self-contained.
#include "vsr/vsr.hpp"

#ifndef BOOST_TEST_DYN_LINK  // meson's boost dependency may define it already
#define BOOST_TEST_DYN_LINK
#endif
#include <boost/test/unit_test.hpp>

#include "odr_policies.hpp"

// Linking odr_a.o and odr_b.o into this executable is most of the test; running both
// instantiations proves they also work side by side.
BOOST_AUTO_TEST_CASE(both_translation_units_work) {
    BOOST_TEST(odr_test::round_trip_a("a", "from a") == "from a");
    BOOST_TEST(odr_test::round_trip_b("b", "from b") == "from b");
}
