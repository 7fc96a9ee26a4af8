#include "gguf/writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "gguf/file.h"

namespace loupe::gguf {
namespace {

class Sink {
 public:
  explicit Sink(std::FILE* f) : f_(f) {}
  bool ok() const { return ok_; }
  uint64_t written() const { return written_; }

  void bytes(const void* p, size_t n) {
    if (ok_ && n > 0 && std::fwrite(p, 1, n, f_) != n) ok_ = false;
    written_ += n;
  }
  template <typename T>
  void pod(T v) { bytes(&v, sizeof(T)); }
  void string(const std::string& s) {
    pod<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void pad_to(uint64_t alignment) {
    static const uint8_t kZeros[256] = {};
    uint64_t n = (alignment - written_ % alignment) % alignment;
    while (n > 0) {
      uint64_t k = std::min<uint64_t>(n, sizeof(kZeros));
      bytes(kZeros, k);
      n -= k;
    }
  }

  void value(const Value& v) {
    switch (v.type()) {
      case ValueType::kUint8: pod<uint8_t>(static_cast<uint8_t>(*v.as_uint())); break;
      case ValueType::kInt8: pod<int8_t>(static_cast<int8_t>(*v.as_int())); break;
      case ValueType::kUint16: pod<uint16_t>(static_cast<uint16_t>(*v.as_uint())); break;
      case ValueType::kInt16: pod<int16_t>(static_cast<int16_t>(*v.as_int())); break;
      case ValueType::kUint32: pod<uint32_t>(static_cast<uint32_t>(*v.as_uint())); break;
      case ValueType::kInt32: pod<int32_t>(static_cast<int32_t>(*v.as_int())); break;
      case ValueType::kUint64: pod<uint64_t>(*v.as_uint()); break;
      case ValueType::kInt64: pod<int64_t>(*v.as_int()); break;
      case ValueType::kFloat32: pod<float>(static_cast<float>(*v.as_double())); break;
      case ValueType::kFloat64: pod<double>(*v.as_double()); break;
      case ValueType::kBool: pod<uint8_t>(*v.as_bool() ? 1 : 0); break;
      case ValueType::kString: string(*v.as_string()); break;
      case ValueType::kArray:
        pod<uint32_t>(static_cast<uint32_t>(v.array_type()));
        pod<uint64_t>(v.array().size());
        for (const Value& item : v.array()) value(item);
        break;
      case ValueType::kCount: ok_ = false; break;
    }
  }

 private:
  std::FILE* f_;
  bool ok_ = true;
  uint64_t written_ = 0;
};

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

void Writer::set(const std::string& key, Value value) {
  for (KeyValue& kv : kv_) {
    if (kv.key == key) {
      kv.value = std::move(value);
      return;
    }
  }
  kv_.push_back({key, std::move(value)});
}

Status Writer::add_tensor(const std::string& name, DType type, std::vector<int64_t> ne,
                          Producer producer) {
  const DTypeTraits* traits = dtype_traits(static_cast<uint32_t>(type));
  if (traits == nullptr) return make_error(ErrorCode::kInvalidArgument, "tensor '{}': bad type", name);
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims))
    return make_error(ErrorCode::kInvalidArgument, "tensor '{}': {} dimensions (1..{} allowed)",
                      name, ne.size(), kMaxDims);
  int64_t n = 1;
  for (int64_t d : ne) {
    if (d < 0) return make_error(ErrorCode::kInvalidArgument, "tensor '{}': negative dimension", name);
    n *= d;
  }
  if (ne[0] % traits->block_size != 0)
    return make_error(ErrorCode::kInvalidArgument,
                      "tensor '{}': row length {} is not a multiple of the {} block size {}", name,
                      ne[0], traits->name, traits->block_size);
  for (const PendingTensor& t : tensors_)
    if (t.name == name)
      return make_error(ErrorCode::kInvalidArgument, "tensor '{}' added twice", name);
  uint64_t n_bytes = static_cast<uint64_t>(n / traits->block_size) * traits->type_size;
  tensors_.push_back({name, type, std::move(ne), n_bytes, std::move(producer)});
  return Status();
}

Status Writer::add_tensor_bytes(const std::string& name, DType type, std::vector<int64_t> ne,
                                std::span<const uint8_t> bytes) {
  auto copy = std::make_shared<std::vector<uint8_t>>(bytes.begin(), bytes.end());
  LOUPE_TRY(add_tensor(name, type, std::move(ne), [copy, name](std::span<uint8_t> dst) {
    if (dst.size() != copy->size())
      return make_error(ErrorCode::kInvalidArgument, "tensor '{}': {} bytes given, {} expected",
                        name, copy->size(), dst.size());
    std::memcpy(dst.data(), copy->data(), dst.size());
    return Status();
  }));
  const PendingTensor& t = tensors_.back();
  if (t.n_bytes != bytes.size()) {
    uint64_t want = t.n_bytes;
    tensors_.pop_back();
    return make_error(ErrorCode::kInvalidArgument, "tensor '{}': {} bytes given, {} expected",
                      name, bytes.size(), want);
  }
  return Status();
}

uint64_t Writer::data_bytes() const {
  uint64_t total = 0;
  for (const PendingTensor& t : tensors_) total = align_up(total, alignment_) + t.n_bytes;
  return total;
}

Status Writer::write(const std::string& path) const {
  std::string tmp = path + ".partial";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr)
    return make_error(ErrorCode::kIo, "{}: cannot create: {}", tmp, std::strerror(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> guard(f, &std::fclose);
  auto fail = [&](Status s) {
    guard.reset();
    std::remove(tmp.c_str());
    return s;
  };

  Sink out(f);
  out.pod<uint32_t>(kMagic);
  out.pod<uint32_t>(3);
  out.pod<uint64_t>(tensors_.size());
  bool has_alignment = false;
  for (const KeyValue& kv : kv_) has_alignment |= kv.key == "general.alignment";
  bool write_alignment = !has_alignment && alignment_ != kDefaultAlignment;
  out.pod<uint64_t>(kv_.size() + (write_alignment ? 1 : 0));
  for (const KeyValue& kv : kv_) {
    out.string(kv.key);
    out.pod<uint32_t>(static_cast<uint32_t>(kv.value.type()));
    out.value(kv.value);
  }
  if (write_alignment) {
    out.string("general.alignment");
    out.pod<uint32_t>(static_cast<uint32_t>(ValueType::kUint32));
    out.pod<uint32_t>(alignment_);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    offset = align_up(offset, alignment_);
    out.string(t.name);
    out.pod<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) out.pod<uint64_t>(static_cast<uint64_t>(d));
    out.pod<uint32_t>(static_cast<uint32_t>(t.type));
    out.pod<uint64_t>(offset);
    offset += t.n_bytes;
  }
  out.pad_to(alignment_);
  uint64_t data_start = out.written();
  std::vector<uint8_t> buffer;
  for (const PendingTensor& t : tensors_) {
    uint64_t rel = out.written() - data_start;
    uint64_t pad = align_up(rel, alignment_) - rel;
    static const uint8_t kZeros[256] = {};
    for (uint64_t k = 0; k < pad;) {
      uint64_t n = std::min<uint64_t>(pad - k, sizeof(kZeros));
      out.bytes(kZeros, n);
      k += n;
    }
    buffer.resize(t.n_bytes);
    Status s = t.producer(std::span<uint8_t>(buffer.data(), buffer.size()));
    if (!s.ok()) return fail(s.with_context(fmt::format("{}: tensor '{}'", path, t.name)));
    out.bytes(buffer.data(), buffer.size());
    if (!out.ok()) break;
  }
  if (!out.ok() || std::fflush(f) != 0)
    return fail(make_error(ErrorCode::kIo, "{}: write failed: {}", tmp, std::strerror(errno)));
  guard.reset();
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    return make_error(ErrorCode::kIo, "{}: cannot rename from {}: {}", path, tmp, ec.message());
  }
  return Status();
}

}  // namespace loupe::gguf
