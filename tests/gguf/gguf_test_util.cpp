#include "gguf_test_util.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

namespace loupe::gguf::testing {

std::vector<uint8_t> write_sample(const std::string& path, uint32_t alignment) {
  Writer w(alignment);
  w.set("general.architecture", Value::str("llama"));
  w.set("general.name", Value::str("sample"));
  w.set("test.u8", Value::make_uint(ValueType::kUint8, 200));
  w.set("test.i8", Value::make_int(ValueType::kInt8, -100));
  w.set("test.u16", Value::make_uint(ValueType::kUint16, 60000));
  w.set("test.i16", Value::make_int(ValueType::kInt16, -30000));
  w.set("test.u32", Value::u32(4000000000u));
  w.set("test.i32", Value::i32(-2000000000));
  w.set("test.f32", Value::f32(0.5f));
  w.set("test.bool", Value::boolean(true));
  w.set("test.u64", Value::u64(1ull << 40));
  w.set("test.i64", Value::make_int(ValueType::kInt64, -(1ll << 40)));
  w.set("test.f64", Value::make_float(ValueType::kFloat64, 1e-300));
  w.set("test.strings", Value::make_array(ValueType::kString, {Value::str("a"), Value::str("bc")}));
  w.set("test.nested",
        Value::make_array(ValueType::kArray,
                          {Value::make_array(ValueType::kInt32, {Value::i32(1), Value::i32(2)}),
                           Value::make_array(ValueType::kInt32, {})}));
  std::vector<float> f32(64);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<float>(i) - 10.0f;
  std::vector<uint8_t> raw(f32.size() * 4);
  std::memcpy(raw.data(), f32.data(), raw.size());
  EXPECT_TRUE(w.add_tensor_bytes("a.f32", DType::kF32, {16, 4}, raw).ok());
  std::vector<uint8_t> f16(32 * 2, 0x3c);
  EXPECT_TRUE(w.add_tensor_bytes("b.f16", DType::kF16, {32}, f16).ok());
  std::vector<uint8_t> q8(34 * 2, 1);
  EXPECT_TRUE(w.add_tensor_bytes("c.q8_0", DType::kQ8_0, {32, 2}, q8).ok());
  Status s = w.write(path);
  EXPECT_TRUE(s.ok()) << s.message();
  return read_bytes(path);
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace loupe::gguf::testing
