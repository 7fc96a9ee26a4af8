// GGUF metadata values: the 13 scalar/string/array kinds, arrays possibly nested.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace loupe::gguf {

// On-disk value type ids (GGUF spec `gguf_metadata_value_type`).
enum class ValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
  kCount = 13
};

std::string_view value_type_name(ValueType type);
// Bytes of one scalar of this type; 0 for string and array.
size_t value_type_size(ValueType type);

// One metadata value. Scalars keep their declared type; integers are stored widened.
class Value {
 public:
  Value() = default;
  static Value make_uint(ValueType type, uint64_t v);
  static Value make_int(ValueType type, int64_t v);
  static Value make_float(ValueType type, double v);
  static Value make_bool(bool v);
  static Value make_string(std::string v);
  static Value make_array(ValueType elem_type, std::vector<Value> items);

  // Convenience constructors for writers.
  static Value u32(uint32_t v) { return make_uint(ValueType::kUint32, v); }
  static Value i32(int32_t v) { return make_int(ValueType::kInt32, v); }
  static Value u64(uint64_t v) { return make_uint(ValueType::kUint64, v); }
  static Value f32(float v) { return make_float(ValueType::kFloat32, v); }
  static Value str(std::string v) { return make_string(std::move(v)); }
  static Value boolean(bool v) { return make_bool(v); }

  ValueType type() const { return type_; }
  bool is_integer() const;
  bool is_float() const { return type_ == ValueType::kFloat32 || type_ == ValueType::kFloat64; }
  bool is_string() const { return type_ == ValueType::kString; }
  bool is_array() const { return type_ == ValueType::kArray; }
  bool is_bool() const { return type_ == ValueType::kBool; }

  // Numeric views; nullopt when the value is not a number (or does not fit).
  std::optional<int64_t> as_int() const;
  std::optional<uint64_t> as_uint() const;
  std::optional<double> as_double() const;
  std::optional<bool> as_bool() const;
  const std::string* as_string() const { return is_string() ? &str_ : nullptr; }

  ValueType array_type() const { return elem_type_; }
  const std::vector<Value>& array() const { return items_; }

  // Compact human-readable rendering (arrays abbreviated past `max_items`).
  std::string to_display(size_t max_items = 8) const;

 private:
  ValueType type_ = ValueType::kUint8;
  uint64_t bits_ = 0;  // uint/int/bool payload; float payload as double bits
  double f_ = 0;
  std::string str_;
  ValueType elem_type_ = ValueType::kUint8;
  std::vector<Value> items_;
};

struct KeyValue {
  std::string key;
  Value value;
};

}  // namespace loupe::gguf
