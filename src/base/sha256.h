// SHA-256 (OpenSSL's libcrypto): model identity in provenance records and `inspect --hash`.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace loupe {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::span<const uint8_t> bytes);
  // Lower-case hex digest; the object is finished afterwards.
  std::string hex_digest();

 private:
  void* ctx_;  // EVP_MD_CTX
};

std::string sha256_hex(std::span<const uint8_t> bytes);
Expected<std::string> sha256_file(const std::string& path);

}  // namespace loupe
