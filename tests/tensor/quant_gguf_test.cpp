// Ground truth from llama.cpp: testdata/models has F32 models and twins that llama-quantize
// (b4748, no imatrix) made from them. For every quantized twin tensor we check that
//   1. our dequantization of llama.cpp's bytes is within the type's error bound of the F32
//      tensor, and
//   2. our quantization of the F32 tensor reproduces llama.cpp's bytes (fraction of
//      identical blocks, expected 100%), and is at least as accurate.
// The GGUF module is developed separately; this file carries its own minimal reader.
#include <gtest/gtest.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "common/testdata.h"
#include "quant_bounds.h"
#include "tensor/quant.h"

namespace loupe {
namespace {

using testing::ErrorStats;
using testing::relative_rmse_bound;

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // [ne0 (row length), ne1, ...]
  uint32_t type = 0;
  uint64_t offset = 0;  // from the start of the data section

  int64_t n_elements() const {
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    return n;
  }
};

// A GGUF v3 file read into memory: just the tensor directory and the data section.
class MiniGguf {
 public:
  // Returns "" on success, else what was wrong.
  std::string load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "cannot open " + path;
    bytes_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    pos_ = 0;
    if (bytes_.size() < 24 || std::memcmp(bytes_.data(), "GGUF", 4) != 0) return "not a GGUF file";
    pos_ = 4;
    if (read<uint32_t>() != 3) return "not GGUF v3";
    const auto n_tensors = read<uint64_t>();
    const auto n_kv = read<uint64_t>();
    uint64_t alignment = 32;
    for (uint64_t i = 0; i < n_kv && ok_; ++i) {
      const std::string key = read_string();
      const auto type = read<uint32_t>();
      if (key == "general.alignment" && type == 4) {
        alignment = read<uint32_t>();
      } else {
        skip_value(type);
      }
    }
    for (uint64_t i = 0; i < n_tensors && ok_; ++i) {
      TensorInfo t;
      t.name = read_string();
      const auto n_dims = read<uint32_t>();
      for (uint32_t d = 0; d < n_dims && ok_; ++d)
        t.ne.push_back(static_cast<int64_t>(read<uint64_t>()));
      t.type = read<uint32_t>();
      t.offset = read<uint64_t>();
      tensors_.push_back(t);
    }
    if (!ok_) return "truncated header";
    data_start_ = (pos_ + alignment - 1) / alignment * alignment;
    for (const TensorInfo& t : tensors_) {
      const DTypeTraits* traits = dtype_traits(t.type);
      if (traits == nullptr) return "unknown type in " + t.name;
      if (data_start_ + t.offset + dtype_row_size(static_cast<DType>(t.type), t.n_elements()) >
          bytes_.size())
        return "tensor " + t.name + " out of bounds";
    }
    return "";
  }

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const {
    for (const TensorInfo& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }
  const uint8_t* data(const TensorInfo& t) const { return bytes_.data() + data_start_ + t.offset; }

 private:
  template <typename T>
  T read() {
    T v{};
    if (pos_ + sizeof(T) > bytes_.size()) {
      ok_ = false;
      return v;
    }
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string() {
    const auto len = read<uint64_t>();
    if (!ok_ || len > bytes_.size() - pos_) {
      ok_ = false;
      return "";
    }
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  // GGUF value types 0..12: u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64.
  void skip_value(uint32_t type) {
    static constexpr size_t kSizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type > 12) {
      ok_ = false;
    } else if (type == 8) {
      read_string();
    } else if (type == 9) {
      const auto elem_type = read<uint32_t>();
      const auto count = read<uint64_t>();
      for (uint64_t i = 0; i < count && ok_; ++i) skip_value(elem_type);
    } else {
      pos_ += kSizes[type];
      if (pos_ > bytes_.size()) ok_ = false;
    }
  }

  std::vector<uint8_t> bytes_;
  std::vector<TensorInfo> tensors_;
  size_t pos_ = 0;
  size_t data_start_ = 0;
  bool ok_ = true;
};

struct TypeReport {
  int n_tensors = 0;
  ErrorStats ours;    // our quantization, dequantized, vs F32
  ErrorStats theirs;  // llama.cpp's quantization, dequantized (by us), vs F32
  int64_t n_blocks = 0;
  int64_t n_identical_blocks = 0;
};

// Compares every non-F32 tensor of `twin_file` against the same tensor of `f32_file`.
void compare_twin(const std::string& f32_file, const std::string& twin_file,
                  std::map<std::string, TypeReport>* reports) {
  MiniGguf f32, twin;
  ASSERT_EQ(f32.load(testing::testdata_path("models/" + f32_file)), "") << f32_file;
  ASSERT_EQ(twin.load(testing::testdata_path("models/" + twin_file)), "") << twin_file;
  for (const TensorInfo& t : twin.tensors()) {
    if (t.type == static_cast<uint32_t>(DType::kF32)) continue;
    SCOPED_TRACE(twin_file + ": " + t.name);
    const auto type = static_cast<DType>(t.type);
    ASSERT_TRUE(can_dequantize(type) && can_quantize(type)) << dtype_name(type);
    const TensorInfo* ref = f32.find(t.name);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(ref->type, static_cast<uint32_t>(DType::kF32));
    ASSERT_EQ(ref->ne, t.ne);

    const int64_t n = t.n_elements();
    const int64_t row = t.ne[0];
    const auto* x = reinterpret_cast<const float*>(f32.data(*ref));  // [n_rows, row]
    const uint8_t* theirs = twin.data(t);
    const size_t row_bytes = dtype_row_size(type, row);

    // ggml quantizes row by row; blocks never straddle rows since row % block == 0.
    std::vector<uint8_t> ours(row_bytes * static_cast<size_t>(n / row));
    for (int64_t r = 0; r < n / row; ++r)
      quantize_row_ref(type, x + r * row, ours.data() + r * row_bytes, row);
    std::vector<float> y_ours(static_cast<size_t>(n)), y_theirs(static_cast<size_t>(n));
    dequantize_row_ref(type, ours.data(), y_ours.data(), n);
    dequantize_row_ref(type, theirs, y_theirs.data(), n);

    ErrorStats s_ours, s_theirs;
    s_ours.add(x, y_ours.data(), n);
    s_theirs.add(x, y_theirs.data(), n);
    EXPECT_LE(s_theirs.relative_rmse(), relative_rmse_bound(type));
    EXPECT_LE(s_ours.rmse(), s_theirs.rmse() * 1.0001);

    const size_t block_bytes = dtype_traits(type).type_size;
    const int64_t n_blocks = static_cast<int64_t>(ours.size() / block_bytes);
    int64_t identical = 0;
    for (int64_t b = 0; b < n_blocks; ++b)
      identical +=
          std::memcmp(ours.data() + b * block_bytes, theirs + b * block_bytes, block_bytes) == 0;
    EXPECT_EQ(identical, n_blocks) << "blocks differing from llama.cpp's";

    TypeReport& report = (*reports)[std::string(dtype_name(type))];
    report.n_tensors++;
    report.ours.add(x, y_ours.data(), n);
    report.theirs.add(x, y_theirs.data(), n);
    report.n_blocks += n_blocks;
    report.n_identical_blocks += identical;
  }
}

TEST(QuantGguf, MatchesLlamaQuantizeOnTestModels) {
  LOUPE_REQUIRE_TESTDATA();
  const std::pair<const char*, const char*> kTwins[] = {
      {"llama-tok512.F32.gguf", "llama-tok512.F16.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.BF16.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q8_0.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q4_0.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q4_K_M.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q5_K_M.gguf"},
      {"llama-tok512.F32.gguf", "llama-tok512.Q6_K.gguf"},
      {"gemma2-tok512.F32.gguf", "gemma2-tok512.Q8_0.gguf"},
      {"phi3-tok512.F32.gguf", "phi3-tok512.Q4_K_M.gguf"},
  };
  std::map<std::string, TypeReport> reports;
  for (const auto& [f32_file, twin_file] : kTwins) compare_twin(f32_file, twin_file, &reports);

  std::printf("%-7s %9s %14s %14s %10s\n", "type", "tensors", "our RMSE", "llama RMSE",
              "identical");
  for (const auto& [name, r] : reports) {
    std::printf(
        "%-7s %9d %14.8f %14.8f %9.3f%%\n", name.c_str(), r.n_tensors, r.ours.rmse(),
        r.theirs.rmse(),
        100.0 * static_cast<double>(r.n_identical_blocks) / static_cast<double>(r.n_blocks));
  }
  // Every type the twins use must have been seen, so a renamed file cannot pass vacuously.
  for (const char* name : {"F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q5_K", "Q6_K"})
    EXPECT_TRUE(reports.count(name)) << name;
}

}  // namespace
}  // namespace loupe
