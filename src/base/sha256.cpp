#include "base/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <vector>

#include "base/mapped_file.h"

namespace loupe {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::update(std::span<const uint8_t> bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

std::string Sha256::hex_digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), md, &len);
  static const char* kHex = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

Expected<std::string> sha256_file(const std::string& path) {
  LOUPE_ASSIGN_OR_RETURN(MappedFile file, MappedFile::open(path));
  Sha256 h;
  // Hash in chunks so the kernel can drop pages behind us on huge files.
  constexpr size_t kChunk = 64u << 20;
  for (size_t off = 0; off < file.size(); off += kChunk) {
    size_t n = std::min(kChunk, file.size() - off);
    h.update(file.bytes().subspan(off, n));
  }
  return h.hex_digest();
}

}  // namespace loupe
