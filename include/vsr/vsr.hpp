// Umbrella header for the VSR library.
#pragma once

#include "vsr/bytes.hpp"
#include "vsr/checksum.hpp"
#include "vsr/client.hpp"
#include "vsr/client_table.hpp"
#include "vsr/config.hpp"
#include "vsr/log.hpp"
#include "vsr/log_entry.hpp"
#include "vsr/message_bus.hpp"
#include "vsr/random.hpp"
#include "vsr/replica.hpp"
#include "vsr/state_machine.hpp"
#include "vsr/time.hpp"
#include "vsr/wire.hpp"
