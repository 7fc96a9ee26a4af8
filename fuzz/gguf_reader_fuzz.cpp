// libFuzzer target for the GGUF reader: any byte string must give a File or an error,
// never a crash, a sanitizer report or a read outside the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "gguf/file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  loupe::gguf::ReadLimits limits;
  limits.max_string_bytes = 1 << 20;  // keep allocations small under the fuzzer
  limits.max_array_items = 1 << 20;
  auto file = loupe::gguf::File::parse(std::span<const uint8_t>(data, size), "fuzz.gguf", limits);
  if (!file) return 0;
  // Touch everything the reader handed out.
  size_t sink = 0;
  for (const auto& kv : file->metadata()) sink += kv.value.to_display().size();
  for (const auto& t : file->tensors()) {
    if (t.n_bytes > 0) sink += t.data[0] + t.data[t.n_bytes - 1];
    sink += static_cast<size_t>(t.n_elements());
  }
  (void)file->get_string("general.architecture");
  (void)file->get_int("general.alignment");
  return static_cast<int>(sink & 0);
}
