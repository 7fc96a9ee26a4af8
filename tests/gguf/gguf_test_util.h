// Helpers shared by the GGUF tests: a small valid file image to corrupt and re-read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gguf/writer.h"

namespace loupe::gguf::testing {

// Writes a small GGUF (every metadata type incl. nested arrays; F32, F16 and Q8_0
// tensors) to `path` and returns its bytes.
std::vector<uint8_t> write_sample(const std::string& path, uint32_t alignment = 32);
std::vector<uint8_t> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes);

}  // namespace loupe::gguf::testing
