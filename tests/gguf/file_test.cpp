#include "gguf/file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "common/testdata.h"
#include "gguf/writer.h"
#include "gguf_test_util.h"

namespace loupe::gguf {
namespace {

using testing::read_bytes;
using testing::write_bytes;
using testing::write_sample;

TEST(GgufWriter, RoundTripsEveryValueTypeAndTensor) {
  std::string path = loupe::testing::temp_dir() + "/sample.gguf";
  write_sample(path, 64);
  auto file = File::open(path);
  ASSERT_TRUE(file) << file.status().message();
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->data_offset() % 64, 0u);
  EXPECT_EQ(file->architecture(), "llama");
  EXPECT_EQ(*file->find("test.u8")->as_uint(), 200u);
  EXPECT_EQ(file->find("test.u8")->type(), ValueType::kUint8);
  EXPECT_EQ(*file->find("test.i8")->as_int(), -100);
  EXPECT_EQ(*file->find("test.u16")->as_uint(), 60000u);
  EXPECT_EQ(*file->find("test.i16")->as_int(), -30000);
  EXPECT_EQ(*file->find("test.u32")->as_uint(), 4000000000u);
  EXPECT_EQ(*file->find("test.i32")->as_int(), -2000000000);
  EXPECT_EQ(*file->find("test.f32")->as_double(), 0.5);
  EXPECT_EQ(*file->find("test.bool")->as_bool(), true);
  EXPECT_EQ(*file->find("test.u64")->as_uint(), 1ull << 40);
  EXPECT_EQ(*file->find("test.i64")->as_int(), -(1ll << 40));
  EXPECT_EQ(*file->find("test.f64")->as_double(), 1e-300);
  const Value* strings = file->find("test.strings");
  ASSERT_TRUE(strings && strings->is_array());
  EXPECT_EQ(strings->array_type(), ValueType::kString);
  ASSERT_EQ(strings->array().size(), 2u);
  EXPECT_EQ(*strings->array()[1].as_string(), "bc");
  const Value* nested = file->find("test.nested");
  ASSERT_TRUE(nested && nested->array().size() == 2);
  EXPECT_EQ(*nested->array()[0].array()[1].as_int(), 2);
  EXPECT_TRUE(nested->array()[1].array().empty());

  ASSERT_EQ(file->tensors().size(), 3u);
  const TensorInfo* a = file->find_tensor("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->ne, (std::vector<int64_t>{16, 4}));
  EXPECT_EQ(a->n_bytes, 256u);
  float v;
  std::memcpy(&v, a->data + 4 * 11, 4);
  EXPECT_EQ(v, 1.0f);
  const TensorInfo* c = file->find_tensor("c.q8_0");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type, DType::kQ8_0);
  EXPECT_EQ(c->n_bytes, 68u);
  for (const TensorInfo& t : file->tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
  EXPECT_EQ(file->get_int("test.i32").value(), -2000000000);
  EXPECT_FALSE(file->get_string("test.i32"));
  EXPECT_FALSE(file->get_int("missing.key"));
}

TEST(GgufWriter, RejectsBadTensors) {
  Writer w;
  std::vector<uint8_t> bytes(10);
  EXPECT_FALSE(w.add_tensor_bytes("x", DType::kQ8_0, {16}, bytes).ok());  // not a block multiple
  EXPECT_FALSE(w.add_tensor_bytes("x", DType::kF32, {3}, bytes).ok());    // wrong byte count
  EXPECT_FALSE(w.add_tensor_bytes("x", DType::kF32, {1, 1, 1, 1, 1}, bytes).ok());
  EXPECT_EQ(w.n_tensors(), 0u);
}

// Opens `bytes` from memory and expects a clean error that names an offset.
void expect_rejected(const std::vector<uint8_t>& bytes, const std::string& what) {
  auto file = File::parse(bytes, "bad.gguf");
  ASSERT_FALSE(file) << what << ": accepted";
  EXPECT_NE(file.status().message().find("offset"), std::string::npos)
      << what << ": " << file.status().message();
  EXPECT_NE(file.status().message().find("bad.gguf"), std::string::npos);
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
  ASSERT_LE(at + sizeof(T), b.size());
  std::memcpy(b.data() + at, &v, sizeof(T));
}

// Finds `needle` (a key or tensor name as stored: u64 length + bytes) and returns the
// offset just after it.
size_t after_string(const std::vector<uint8_t>& b, const std::string& needle) {
  for (size_t i = 8; i + needle.size() <= b.size(); ++i) {
    if (std::memcmp(b.data() + i, needle.data(), needle.size()) == 0) {
      uint64_t len;
      std::memcpy(&len, b.data() + i - 8, 8);
      if (len == needle.size()) return i + needle.size();
    }
  }
  ADD_FAILURE() << "not found: " << needle;
  return 0;
}

class GgufCorrupt : public ::testing::Test {
 protected:
  void SetUp() override { good_ = write_sample(loupe::testing::temp_dir() + "/good.gguf"); }
  std::vector<uint8_t> good_;
};

TEST_F(GgufCorrupt, SampleIsValid) { ASSERT_TRUE(File::parse(good_, "good.gguf")); }

TEST_F(GgufCorrupt, EveryTruncationIsAnError) {
  for (size_t n = 0; n < good_.size(); ++n) {
    std::vector<uint8_t> b(good_.begin(), good_.begin() + static_cast<ptrdiff_t>(n));
    expect_rejected(b, fmt::format("truncated to {}", n));
  }
}

TEST_F(GgufCorrupt, BadMagicAndVersion) {
  auto b = good_;
  b[0] = 'X';
  expect_rejected(b, "magic");
  b = good_;
  poke<uint32_t>(b, 4, 7);
  expect_rejected(b, "version 7");
  poke<uint32_t>(b, 4, 1);
  expect_rejected(b, "version 1");
  poke<uint32_t>(b, 4, 0x03000000);
  expect_rejected(b, "big endian");
}

TEST_F(GgufCorrupt, HugeCounts) {
  auto b = good_;
  poke<uint64_t>(b, 8, ~0ull);
  expect_rejected(b, "tensor count");
  b = good_;
  poke<uint64_t>(b, 16, 1ull << 40);
  expect_rejected(b, "kv count");
  b = good_;
  poke<uint64_t>(b, 8, 4);  // one more tensor than present
  expect_rejected(b, "tensor count + 1");
}

TEST_F(GgufCorrupt, HugeStringAndArrayLengths) {
  auto b = good_;
  poke<uint64_t>(b, 24, ~0ull);  // first key's length
  expect_rejected(b, "key length");
  b = good_;
  size_t at = after_string(b, "test.strings");
  poke<uint64_t>(b, at + 4 + 4, 1ull << 60);  // after value type and element type
  expect_rejected(b, "array count");
  b = good_;
  at = after_string(b, "general.name");
  poke<uint64_t>(b, at + 4, 1ull << 33);
  expect_rejected(b, "string value length");
}

TEST_F(GgufCorrupt, UnknownTypes) {
  auto b = good_;
  size_t at = after_string(b, "test.u8");
  poke<uint32_t>(b, at, 99);
  expect_rejected(b, "value type");
  b = good_;
  at = after_string(b, "test.strings");
  poke<uint32_t>(b, at + 4, 13);
  expect_rejected(b, "array element type");
  b = good_;
  at = after_string(b, "b.f16");
  poke<uint32_t>(b, at + 4 + 8, 31);  // removed Q4_0_4_4
  expect_rejected(b, "tensor type");
  b = good_;
  at = after_string(b, "test.bool");
  b[at + 4] = 7;
  expect_rejected(b, "bool value");
}

TEST_F(GgufCorrupt, BadTensorDirectory) {
  auto b = good_;
  size_t at = after_string(b, "a.f32");
  poke<uint32_t>(b, at, 5);
  expect_rejected(b, "n_dims 5");
  b = good_;
  poke<uint32_t>(b, at, 0);
  expect_rejected(b, "n_dims 0");
  b = good_;
  poke<uint64_t>(b, at + 4, 1ull << 62);  // ne[0] * ne[1] overflows
  poke<uint64_t>(b, at + 12, 1ull << 62);
  expect_rejected(b, "ne overflow");
  b = good_;
  poke<uint64_t>(b, at + 4, ~0ull);
  expect_rejected(b, "negative ne");
  b = good_;
  size_t c = after_string(b, "c.q8_0");
  poke<uint64_t>(b, c + 4, 33);  // not a multiple of 32
  expect_rejected(b, "block multiple");
  b = good_;
  poke<uint64_t>(b, c + 4 + 16 + 4, 1ull << 50);
  expect_rejected(b, "offset past end");
  b = good_;
  poke<uint64_t>(b, c + 4 + 16 + 4, 8);
  expect_rejected(b, "misaligned offset");
  b = good_;
  poke<uint64_t>(b, c + 4 + 16 + 4, 0);
  expect_rejected(b, "overlap");
  b = good_;
  size_t bname = after_string(b, "b.f16");
  std::memcpy(b.data() + bname - 5, "a.f32", 5);
  expect_rejected(b, "duplicate tensor");
}

TEST_F(GgufCorrupt, BadAlignmentKey) {
  Writer w;
  w.set("general.alignment", Value::u32(24));
  std::string path = loupe::testing::temp_dir() + "/align.gguf";
  ASSERT_TRUE(w.write(path).ok());
  expect_rejected(read_bytes(path), "alignment 24");
  Writer w2;
  w2.set("general.alignment", Value::str("x"));
  ASSERT_TRUE(w2.write(path).ok());
  expect_rejected(read_bytes(path), "alignment string");
}

TEST_F(GgufCorrupt, RandomMutationsNeverCrash) {
  std::mt19937_64 rng(1234);
  int rejected = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    auto b = good_;
    int n_mut = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      size_t at = rng() % b.size();
      switch (rng() % 3) {
        case 0: b[at] = static_cast<uint8_t>(rng()); break;
        case 1: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 2: if (at + 8 <= b.size()) poke<uint64_t>(b, at, rng() >> (rng() % 64)); break;
      }
    }
    auto file = File::parse(b, "mut.gguf");
    if (!file) {
      ++rejected;
      EXPECT_FALSE(file.status().message().empty());
      continue;
    }
    // Whatever is accepted must be internally consistent.
    for (const TensorInfo& t : file->tensors()) {
      ASSERT_GE(t.data, b.data());
      ASSERT_LE(t.data + t.n_bytes, b.data() + b.size());
    }
  }
  EXPECT_GT(rejected, 100);
}

TEST(GgufSplit, OpensAllPartsFromTheFirst) {
  std::string dir = loupe::testing::temp_dir();
  const int n_parts = 3;
  for (int i = 0; i < n_parts; ++i) {
    Writer w;
    if (i == 0) w.set("general.architecture", Value::str("llama"));
    w.set("split.no", Value::make_uint(ValueType::kUint16, i));
    w.set("split.count", Value::make_uint(ValueType::kUint16, n_parts));
    w.set("split.tensors.count", Value::i32(2 * n_parts));
    for (int k = 0; k < 2; ++k) {
      std::vector<uint8_t> bytes(8 * 4, static_cast<uint8_t>(i * 2 + k));
      ASSERT_TRUE(w.add_tensor_bytes(fmt::format("t{}", i * 2 + k), DType::kF32, {8}, bytes).ok());
    }
    ASSERT_TRUE(w.write(fmt::format("{}/m-{:05d}-of-{:05d}.gguf", dir, i + 1, n_parts)).ok());
  }
  auto file = File::open(dir + "/m-00001-of-00003.gguf");
  ASSERT_TRUE(file) << file.status().message();
  EXPECT_EQ(file->n_splits(), 3);
  ASSERT_EQ(file->tensors().size(), 6u);
  EXPECT_EQ(file->architecture(), "llama");
  const TensorInfo* t5 = file->find_tensor("t5");
  ASSERT_NE(t5, nullptr);
  EXPECT_EQ(t5->split, 2);
  EXPECT_EQ(t5->data[0], 5);

  auto second = File::open(dir + "/m-00002-of-00003.gguf");
  ASSERT_FALSE(second);
  EXPECT_NE(second.status().message().find("open the first part"), std::string::npos);

  std::filesystem::remove(dir + "/m-00003-of-00003.gguf");
  auto missing = File::open(dir + "/m-00001-of-00003.gguf");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("part 3 of 3"), std::string::npos)
      << missing.status().message();
}

TEST(GgufTestdata, EveryModelOpensWithTheRecordedTensors) {
  LOUPE_REQUIRE_TESTDATA();
  int checked = 0;
  for (const char* dir : {"ref", "ref2026"}) {
    for (const auto& entry : std::filesystem::directory_iterator(loupe::testing::testdata_path(dir))) {
      std::string manifest_path = (entry.path() / "manifest.json").string();
      if (!std::filesystem::exists(manifest_path)) continue;
      nlohmann::json m = nlohmann::json::parse(read_bytes(manifest_path));
      std::string model = loupe::testing::testdata_path(m["model_file"].get<std::string>());
      auto file = File::open(model);
      ASSERT_TRUE(file) << file.status().message();
      const auto& tensors = m["tensors"];
      EXPECT_EQ(file->tensors().size(), tensors.size()) << model;
      for (auto it = tensors.begin(); it != tensors.end(); ++it) {
        const TensorInfo* t = file->find_tensor(it.key());
        ASSERT_NE(t, nullptr) << model << " " << it.key();
        EXPECT_EQ(dtype_name(t->type), it.value()[0].get<std::string>()) << it.key();
        EXPECT_EQ(t->ne, it.value()[1].get<std::vector<int64_t>>()) << it.key();
      }
      if (m.contains("model_size_bytes")) {
        EXPECT_EQ(file->file_size(), m["model_size_bytes"].get<uint64_t>());
      }
      ++checked;
    }
  }
  EXPECT_GE(checked, 40);
}

TEST(GgufTestdata, VocabOnlyFilesOpen) {
  LOUPE_REQUIRE_TESTDATA();
  auto files = loupe::testing::testdata_files("vocab", ".gguf");
  ASSERT_FALSE(files.empty());
  for (const std::string& path : files) {
    auto file = File::open(path);
    ASSERT_TRUE(file) << file.status().message();
    EXPECT_TRUE(file->tensors().empty()) << path;
    EXPECT_NE(file->find("tokenizer.ggml.model"), nullptr) << path;
  }
}

TEST(GgufTestdata, RewriteIsReadBackIdentically) {
  LOUPE_REQUIRE_TESTDATA();
  auto file = File::open(loupe::testing::testdata_path("models/stories260K.gguf"));
  ASSERT_TRUE(file) << file.status().message();
  Writer w(file->alignment());
  for (const KeyValue& kv : file->metadata()) w.set(kv.key, kv.value);
  for (const TensorInfo& t : file->tensors()) ASSERT_TRUE(w.add_tensor_bytes(t.name, t.type, t.ne, t.bytes()).ok());
  std::string out = loupe::testing::temp_dir() + "/copy.gguf";
  ASSERT_TRUE(w.write(out).ok());
  EXPECT_EQ(read_bytes(out), read_bytes(file->path()));
}

}  // namespace
}  // namespace loupe::gguf
