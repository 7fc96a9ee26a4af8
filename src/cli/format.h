// Human-readable numbers for terminal output.
#pragma once

#include <cstdint>
#include <string>

namespace loupe::cli {

std::string human_bytes(uint64_t bytes);   // "636.2 MiB"
std::string human_count(int64_t n);        // "1.10 B", "260.4 K"

}  // namespace loupe::cli
