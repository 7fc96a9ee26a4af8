#include "gguf/value.h"

#include <cmath>
#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace loupe::gguf {

std::string_view value_type_name(ValueType type) {
  switch (type) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
    case ValueType::kCount: break;
  }
  return "?";
}

size_t value_type_size(ValueType type) {
  switch (type) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kBool: return 1;
    case ValueType::kUint16:
    case ValueType::kInt16: return 2;
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kFloat32: return 4;
    case ValueType::kUint64:
    case ValueType::kInt64:
    case ValueType::kFloat64: return 8;
    default: return 0;
  }
}

Value Value::make_uint(ValueType type, uint64_t v) {
  Value out;
  out.type_ = type;
  out.bits_ = v;
  return out;
}

Value Value::make_int(ValueType type, int64_t v) {
  Value out;
  out.type_ = type;
  out.bits_ = static_cast<uint64_t>(v);
  return out;
}

Value Value::make_float(ValueType type, double v) {
  Value out;
  out.type_ = type;
  out.f_ = v;
  return out;
}

Value Value::make_bool(bool v) {
  Value out;
  out.type_ = ValueType::kBool;
  out.bits_ = v ? 1 : 0;
  return out;
}

Value Value::make_string(std::string v) {
  Value out;
  out.type_ = ValueType::kString;
  out.str_ = std::move(v);
  return out;
}

Value Value::make_array(ValueType elem_type, std::vector<Value> items) {
  Value out;
  out.type_ = ValueType::kArray;
  out.elem_type_ = elem_type;
  out.items_ = std::move(items);
  return out;
}

bool Value::is_integer() const {
  switch (type_) {
    case ValueType::kUint8:
    case ValueType::kInt8:
    case ValueType::kUint16:
    case ValueType::kInt16:
    case ValueType::kUint32:
    case ValueType::kInt32:
    case ValueType::kUint64:
    case ValueType::kInt64: return true;
    default: return false;
  }
}

static bool is_signed(ValueType t) {
  return t == ValueType::kInt8 || t == ValueType::kInt16 || t == ValueType::kInt32 ||
         t == ValueType::kInt64;
}

std::optional<int64_t> Value::as_int() const {
  if (is_integer()) {
    if (is_signed(type_)) return static_cast<int64_t>(bits_);
    if (bits_ > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(bits_);
  }
  if (type_ == ValueType::kBool) return static_cast<int64_t>(bits_);
  return std::nullopt;
}

std::optional<uint64_t> Value::as_uint() const {
  if (!is_integer()) return std::nullopt;
  if (is_signed(type_) && static_cast<int64_t>(bits_) < 0) return std::nullopt;
  return bits_;
}

std::optional<double> Value::as_double() const {
  if (is_float()) return f_;
  if (is_integer()) {
    return is_signed(type_) ? static_cast<double>(static_cast<int64_t>(bits_))
                            : static_cast<double>(bits_);
  }
  return std::nullopt;
}

std::optional<bool> Value::as_bool() const {
  if (type_ == ValueType::kBool) return bits_ != 0;
  return std::nullopt;
}

std::string Value::to_display(size_t max_items) const {
  switch (type_) {
    case ValueType::kString: {
      std::string s = str_.size() > 120 ? str_.substr(0, 117) + "..." : str_;
      std::string out = "\"";
      for (char c : s) {
        if (c == '\n') out += "\\n";
        else if (c == '"') out += "\\\"";
        else out += c;
      }
      return out + "\"";
    }
    case ValueType::kBool: return bits_ ? "true" : "false";
    case ValueType::kFloat32:
    case ValueType::kFloat64: return fmt::format("{}", f_);
    case ValueType::kArray: {
      std::string out = "[";
      for (size_t i = 0; i < items_.size() && i < max_items; ++i) {
        if (i) out += ", ";
        out += items_[i].to_display(max_items);
      }
      if (items_.size() > max_items) out += fmt::format(", ... ({} items)", items_.size());
      return out + "]";
    }
    default:
      if (is_signed(type_)) return fmt::format("{}", static_cast<int64_t>(bits_));
      return fmt::format("{}", bits_);
  }
}

}  // namespace loupe::gguf
