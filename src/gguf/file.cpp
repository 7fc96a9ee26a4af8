#include "gguf/file.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <regex>

#include <fmt/format.h>

namespace loupe::gguf {

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

// Reads one GGUF image. Every read is bounds-checked against the image; every error
// names the file, the byte offset where the bad field starts, the field and the problem.
class Parser {
 public:
  Parser(std::span<const uint8_t> bytes, const std::string& name, const ReadLimits& limits)
      : bytes_(bytes), name_(name), limits_(limits) {}

  // Parses header, metadata and tensor directory into `out`; tensors get data pointers
  // into this image and `split` index `split`.
  Status parse(File& out, int split);

 private:
  template <typename... Args>
  Status fail(uint64_t at, const std::string& field, fmt::format_string<Args...> f,
              Args&&... args) {
    return Status(ErrorCode::kCorrupt,
                  fmt::format("{}: offset {}: {}: {}", name_, at, field,
                              fmt::format(f, std::forward<Args>(args)...)));
  }

  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  Status read(T& v, const std::string& field) {
    if (remaining() < sizeof(T))
      return fail(pos_, field, "file ends after {} bytes, {} more needed", bytes_.size(),
                  sizeof(T) - remaining());
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status();
  }

  Status read_string(std::string& s, const std::string& field) {
    uint64_t at = pos_;
    uint64_t len = 0;
    LOUPE_TRY(read(len, field + " length"));
    if (len > limits_.max_string_bytes)
      return fail(at, field, "string length {} exceeds the limit of {} bytes", len,
                  limits_.max_string_bytes);
    if (len > remaining())
      return fail(at, field, "string length {} runs past the end of the file ({} bytes left)",
                  len, remaining());
    s.assign(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return Status();
  }

  Status read_value(ValueType type, Value& out, const std::string& field, int depth);

  std::span<const uint8_t> bytes_;
  const std::string& name_;
  const ReadLimits& limits_;
  uint64_t pos_ = 0;
};

Status Parser::read_value(ValueType type, Value& out, const std::string& field, int depth) {
  uint64_t at = pos_;
  switch (type) {
    case ValueType::kUint8: { uint8_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_uint(type, v); break; }
    case ValueType::kInt8: { int8_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_int(type, v); break; }
    case ValueType::kUint16: { uint16_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_uint(type, v); break; }
    case ValueType::kInt16: { int16_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_int(type, v); break; }
    case ValueType::kUint32: { uint32_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_uint(type, v); break; }
    case ValueType::kInt32: { int32_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_int(type, v); break; }
    case ValueType::kUint64: { uint64_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_uint(type, v); break; }
    case ValueType::kInt64: { int64_t v{}; LOUPE_TRY(read(v, field)); out = Value::make_int(type, v); break; }
    case ValueType::kFloat32: { float v{}; LOUPE_TRY(read(v, field)); out = Value::make_float(type, v); break; }
    case ValueType::kFloat64: { double v{}; LOUPE_TRY(read(v, field)); out = Value::make_float(type, v); break; }
    case ValueType::kBool: {
      uint8_t v{};
      LOUPE_TRY(read(v, field));
      if (v > 1) return fail(at, field, "bool value {} is neither 0 nor 1", v);
      out = Value::make_bool(v != 0);
      break;
    }
    case ValueType::kString: {
      std::string s;
      LOUPE_TRY(read_string(s, field));
      out = Value::make_string(std::move(s));
      break;
    }
    case ValueType::kArray: {
      if (depth >= limits_.max_array_depth)
        return fail(at, field, "arrays nested deeper than {}", limits_.max_array_depth);
      uint32_t elem_raw = 0;
      LOUPE_TRY(read(elem_raw, field + " element type"));
      if (elem_raw >= static_cast<uint32_t>(ValueType::kCount))
        return fail(at, field, "unknown array element type {}", elem_raw);
      ValueType elem = static_cast<ValueType>(elem_raw);
      uint64_t count_at = pos_;
      uint64_t count = 0;
      LOUPE_TRY(read(count, field + " count"));
      if (count > limits_.max_array_items)
        return fail(count_at, field, "array of {} items exceeds the limit of {}", count,
                    limits_.max_array_items);
      // Each item needs at least this many bytes; reject impossible counts before
      // allocating anything.
      uint64_t min_item = elem == ValueType::kString ? 8
                          : elem == ValueType::kArray ? 12
                                                      : value_type_size(elem);
      if (count > remaining() / min_item)
        return fail(count_at, field,
                    "array of {} {} items cannot fit in the {} bytes left in the file", count,
                    value_type_name(elem), remaining());
      std::vector<Value> items(count);
      for (uint64_t i = 0; i < count; ++i)
        LOUPE_TRY(read_value(elem, items[i], fmt::format("{}[{}]", field, i), depth + 1));
      out = Value::make_array(elem, std::move(items));
      break;
    }
    default:
      return fail(at, field, "unknown value type {}", static_cast<uint32_t>(type));
  }
  return Status();
}

Status Parser::parse(File& out, int split) {
  uint32_t magic = 0;
  LOUPE_TRY(read(magic, "magic"));
  if (magic != kMagic) {
    char m[5] = {};
    std::memcpy(m, &magic, 4);
    for (char& c : m)
      if (c != 0 && (c < 32 || c > 126)) c = '?';
    return fail(0, "magic", "expected \"GGUF\", found \"{}\" (0x{:08x}): not a GGUF file", m,
                magic);
  }
  uint32_t version = 0;
  LOUPE_TRY(read(version, "version"));
  if (version == 0x03000000 || version == 0x02000000)
    return fail(4, "version", "big-endian GGUF files are not supported");
  if (version == 1)
    return fail(4, "version", "GGUF v1 is obsolete; re-convert the model with a newer tool");
  if (version != 2 && version != 3)
    return fail(4, "version", "unsupported GGUF version {} (supported: 2, 3)", version);
  uint64_t n_tensors = 0, n_kv = 0;
  LOUPE_TRY(read(n_tensors, "tensor_count"));
  LOUPE_TRY(read(n_kv, "metadata_kv_count"));
  // Each tensor info needs >= 8+4+8+4+8 bytes, each kv >= 8+4+1.
  if (n_tensors > limits_.max_tensors || n_tensors > remaining() / 32)
    return fail(8, "tensor_count", "{} tensors cannot fit in a file of {} bytes", n_tensors,
                bytes_.size());
  if (n_kv > limits_.max_kv || n_kv > remaining() / 13)
    return fail(16, "metadata_kv_count", "{} key/value pairs cannot fit in a file of {} bytes",
                n_kv, bytes_.size());
  out.version_ = version;

  std::vector<KeyValue> kv;
  std::unordered_map<std::string, size_t> kv_index;
  kv.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    uint64_t at = pos_;
    std::string key;
    LOUPE_TRY(read_string(key, fmt::format("metadata[{}].key", i)));
    if (kv_index.count(key)) return fail(at, "metadata key '" + key + "'", "duplicate key");
    uint32_t type_raw = 0;
    uint64_t type_at = pos_;
    LOUPE_TRY(read(type_raw, "metadata '" + key + "' type"));
    if (type_raw >= static_cast<uint32_t>(ValueType::kCount))
      return fail(type_at, "metadata '" + key + "'", "unknown value type {}", type_raw);
    Value value;
    LOUPE_TRY(read_value(static_cast<ValueType>(type_raw), value, "metadata '" + key + "'", 0));
    kv_index.emplace(key, kv.size());
    kv.push_back({std::move(key), std::move(value)});
  }

  uint32_t alignment = kDefaultAlignment;
  if (auto it = kv_index.find("general.alignment"); it != kv_index.end()) {
    const Value& v = kv[it->second].value;
    auto a = v.as_uint();
    if (v.type() != ValueType::kUint32 || !a || *a == 0 || (*a & (*a - 1)) != 0)
      return fail(0, "metadata 'general.alignment'",
                  "must be a u32 power of two, found {} {}", value_type_name(v.type()),
                  v.to_display());
    alignment = static_cast<uint32_t>(*a);
  }

  std::vector<TensorInfo> tensors;
  tensors.reserve(n_tensors);
  std::unordered_map<std::string, size_t> tensor_index;
  std::vector<uint64_t> offset_field_at;  // where each tensor's offset field is, for messages
  for (uint64_t i = 0; i < n_tensors; ++i) {
    uint64_t at = pos_;
    TensorInfo t;
    std::string field = fmt::format("tensor[{}]", i);
    LOUPE_TRY(read_string(t.name, field + ".name"));
    field = fmt::format("tensor[{}] '{}'", i, t.name);
    if (tensor_index.count(t.name)) return fail(at, field, "duplicate tensor name");
    uint32_t n_dims = 0;
    uint64_t dims_at = pos_;
    LOUPE_TRY(read(n_dims, field + " n_dims"));
    if (n_dims == 0 || n_dims > static_cast<uint32_t>(kMaxDims))
      return fail(dims_at, field, "n_dims {} is outside 1..{}", n_dims, kMaxDims);
    t.ne.resize(n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t ne_at = pos_;
      uint64_t ne = 0;
      LOUPE_TRY(read(ne, fmt::format("{} ne[{}]", field, d)));
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        return fail(ne_at, fmt::format("{} ne[{}]", field, d), "dimension {} is negative", static_cast<int64_t>(ne));
      if (ne != 0 && n_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / ne)
        return fail(ne_at, fmt::format("{} ne[{}]", field, d),
                    "element count overflows 64 bits");
      n_elements *= ne;
      t.ne[d] = static_cast<int64_t>(ne);
    }
    uint64_t type_at = pos_;
    uint32_t type_raw = 0;
    LOUPE_TRY(read(type_raw, field + " type"));
    const DTypeTraits* traits = dtype_traits(type_raw);
    if (traits == nullptr)
      return fail(type_at, field, "unknown tensor type {} (not a ggml type this build knows)",
                  type_raw);
    t.type = static_cast<DType>(type_raw);
    if (t.ne[0] % traits->block_size != 0)
      return fail(dims_at, field, "ne[0] = {} is not a multiple of the {} block size {}",
                  t.ne[0], traits->name, traits->block_size);
    uint64_t n_blocks = n_elements / traits->block_size;
    if (n_blocks > std::numeric_limits<uint64_t>::max() / traits->type_size)
      return fail(dims_at, field, "byte size overflows 64 bits");
    t.n_bytes = n_blocks * traits->type_size;
    uint64_t off_at = pos_;
    offset_field_at.push_back(off_at);
    LOUPE_TRY(read(t.offset, field + " offset"));
    if (t.offset % alignment != 0)
      return fail(off_at, field + " offset", "data offset {} is not a multiple of the alignment {}",
                  t.offset, alignment);
    t.split = split;
    tensor_index.emplace(t.name, tensors.size());
    tensors.push_back(std::move(t));
  }

  uint64_t data_offset = (pos_ + alignment - 1) / alignment * alignment;
  if (n_tensors > 0 && data_offset > bytes_.size())
    return fail(pos_, "data section", "starts at {} beyond the end of the file ({} bytes)",
                data_offset, bytes_.size());
  uint64_t data_size = n_tensors > 0 ? bytes_.size() - data_offset : 0;

  // Bounds and overlap of every tensor's data.
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  uint64_t prev_end = 0;
  const TensorInfo* prev = nullptr;
  for (size_t idx : order) {
    TensorInfo& t = tensors[idx];
    if (t.offset > data_size || t.n_bytes > data_size - t.offset)
      return fail(offset_field_at[idx], fmt::format("tensor[{}] '{}' offset", idx, t.name),
                  "{} bytes at data offset {} run past the end of the file (the data section at "
                  "{} holds {} bytes): the file is truncated or the offset is wrong",
                  t.n_bytes, t.offset, data_offset, data_size);
    if (prev != nullptr && t.offset < prev_end && t.n_bytes > 0)
      return fail(offset_field_at[idx], fmt::format("tensor[{}] '{}' offset", idx, t.name),
                  "data at {} overlaps tensor '{}' (which ends at {})", t.offset, prev->name,
                  prev_end);
    t.data = bytes_.data() + data_offset + t.offset;
    if (t.n_bytes > 0) {
      prev_end = t.offset + t.n_bytes;
      prev = &t;
    }
  }

  out.alignment_ = alignment;
  out.data_offset_ = data_offset;
  out.kv_ = std::move(kv);
  out.kv_index_ = std::move(kv_index);
  out.tensors_ = std::move(tensors);
  out.tensor_index_ = std::move(tensor_index);
  return Status();
}

Expected<File> File::parse(std::span<const uint8_t> bytes, const std::string& name,
                           const ReadLimits& limits) {
  File file;
  file.path_ = name;
  file.total_size_ = bytes.size();
  Parser parser(bytes, name, limits);
  LOUPE_TRY(parser.parse(file, 0));
  return file;
}

namespace {

// "NAME-00001-of-00003.gguf" -> ("NAME", 1, 3); the llama.cpp split naming scheme.
bool split_name_parts(const std::string& path, std::string& prefix, int& no, int& count) {
  static const std::regex kSplit(R"(^(.*)-(\d{5})-of-(\d{5})\.gguf$)");
  std::smatch m;
  if (!std::regex_match(path, m, kSplit)) return false;
  prefix = m[1];
  no = std::stoi(m[2]);
  count = std::stoi(m[3]);
  return true;
}

}  // namespace

Expected<File> File::open(const std::string& path, const ReadLimits& limits) {
  auto first_map = MappedFile::open(path);
  if (!first_map) return first_map.status();
  auto map = std::make_shared<MappedFile>(std::move(*first_map));
  File file;
  file.path_ = path;
  Parser parser(map->bytes(), path, limits);
  LOUPE_TRY(parser.parse(file, 0));
  file.total_size_ = map->size();
  file.parts_.push_back({map, path});

  int64_t split_count = file.get_int_or("split.count", 1);
  if (split_count <= 1) return file;

  int64_t split_no = file.get_int_or("split.no", 0);
  std::string prefix;
  int name_no = 0, name_count = 0;
  if (split_no != 0 || !split_name_parts(path, prefix, name_no, name_count) || name_no != 1)
    return make_error(ErrorCode::kInvalidArgument,
                      "{}: part {} of a {}-part split model; open the first part "
                      "(NAME-00001-of-{:05d}.gguf)",
                      path, split_no + 1, split_count, split_count);
  if (name_count != split_count)
    return make_error(ErrorCode::kCorrupt, "{}: file name says {} parts, split.count says {}",
                      path, name_count, split_count);
  for (int64_t i = 1; i < split_count; ++i) {
    std::string part_path = fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, i + 1, split_count);
    auto part_map = MappedFile::open(part_path);
    if (!part_map)
      return Status(part_map.status().code(),
                    fmt::format("split model part {} of {} is missing: {}", i + 1, split_count,
                                part_map.status().message()));
    auto pmap = std::make_shared<MappedFile>(std::move(*part_map));
    File part;
    Parser part_parser(pmap->bytes(), part_path, limits);
    LOUPE_TRY(part_parser.parse(part, static_cast<int>(i)));
    if (part.get_int_or("split.no", -1) != i)
      return make_error(ErrorCode::kCorrupt, "{}: split.no is {}, expected {}", part_path,
                        part.get_int_or("split.no", -1), i);
    for (TensorInfo& t : part.tensors_) {
      if (file.tensor_index_.count(t.name))
        return make_error(ErrorCode::kCorrupt, "{}: tensor '{}' also appears in an earlier part",
                          part_path, t.name);
      file.tensor_index_.emplace(t.name, file.tensors_.size());
      file.tensors_.push_back(std::move(t));
    }
    file.total_size_ += pmap->size();
    file.parts_.push_back({pmap, part_path});
  }
  int64_t expected_tensors = file.get_int_or("split.tensors.count", -1);
  if (expected_tensors >= 0 && expected_tensors != static_cast<int64_t>(file.tensors_.size()))
    return make_error(ErrorCode::kCorrupt,
                      "{}: split.tensors.count says {} tensors, the {} parts hold {}", path,
                      expected_tensors, split_count, file.tensors_.size());
  return file;
}

std::vector<std::string> File::part_paths() const {
  std::vector<std::string> out;
  for (const Part& p : parts_) out.push_back(p.path);
  if (out.empty()) out.push_back(path_);
  return out;
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(std::string(key));
  return it == kv_index_.end() ? nullptr : &kv_[it->second].value;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Expected<std::string> File::get_string(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: key '{}' is missing", path_, key);
  if (!v->is_string())
    return make_error(ErrorCode::kCorrupt, "{}: key '{}' is a {}, expected a string", path_, key,
                      value_type_name(v->type()));
  return *v->as_string();
}

Expected<int64_t> File::get_int(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: key '{}' is missing", path_, key);
  auto i = v->as_int();
  if (!i)
    return make_error(ErrorCode::kCorrupt, "{}: key '{}' is a {}, expected an integer", path_,
                      key, value_type_name(v->type()));
  return *i;
}

Expected<double> File::get_float(std::string_view key) const {
  const Value* v = find(key);
  if (v == nullptr) return make_error(ErrorCode::kNotFound, "{}: key '{}' is missing", path_, key);
  auto d = v->as_double();
  if (!d)
    return make_error(ErrorCode::kCorrupt, "{}: key '{}' is a {}, expected a number", path_, key,
                      value_type_name(v->type()));
  return *d;
}

std::string File::get_string_or(std::string_view key, std::string fallback) const {
  const Value* v = find(key);
  return v != nullptr && v->is_string() ? *v->as_string() : fallback;
}

int64_t File::get_int_or(std::string_view key, int64_t fallback) const {
  const Value* v = find(key);
  auto i = v != nullptr ? v->as_int() : std::nullopt;
  return i ? *i : fallback;
}

double File::get_float_or(std::string_view key, double fallback) const {
  const Value* v = find(key);
  auto d = v != nullptr ? v->as_double() : std::nullopt;
  return d ? *d : fallback;
}

}  // namespace loupe::gguf
