// The KV example's command-line helpers are the shared ones in platform/cli.hpp.
#pragma once

#include "platform/cli.hpp"

namespace kv {
namespace cli = platform::cli;
}  // namespace kv
