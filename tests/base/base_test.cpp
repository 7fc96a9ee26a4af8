#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <mutex>
#include <set>
#include <vector>

#include "base/aligned.h"
#include "base/mapped_file.h"
#include "base/sha256.h"
#include "base/thread_pool.h"
#include "common/testdata.h"

namespace loupe {
namespace {

TEST(Sha256, KnownVectors) {
  // FIPS 180-2 test vectors.
  EXPECT_EQ(sha256_hex({}), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  std::string abc = "abc";
  EXPECT_EQ(sha256_hex({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;  // the same digest fed in pieces
  for (char c : abc) h.update({reinterpret_cast<const uint8_t*>(&c), 1});
  EXPECT_EQ(h.hex_digest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(MappedFile, MapsContentAndReportsErrors) {
  std::string dir = testing::temp_dir();
  std::string path = dir + "/f.bin";
  std::ofstream(path, std::ios::binary) << "hello";
  auto f = MappedFile::open(path);
  ASSERT_TRUE(f) << f.status().message();
  ASSERT_EQ(f->size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(f->data()), 5), "hello");
  auto hash = sha256_file(path);
  ASSERT_TRUE(hash);
  EXPECT_EQ(*hash, "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");

  MappedFile moved = std::move(*f);
  EXPECT_EQ(moved.size(), 5u);

  std::ofstream(dir + "/empty.bin", std::ios::binary);
  auto empty = MappedFile::open(dir + "/empty.bin");
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->size(), 0u);

  auto missing = MappedFile::open(dir + "/nope.bin");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().code(), ErrorCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.bin"), std::string::npos);
  auto directory = MappedFile::open(dir);
  ASSERT_FALSE(directory);
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);
}

TEST(Aligned, AllocatesAligned) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{1000}}) {
    auto p = aligned_alloc_array<float>(n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p.get()) % kDefaultAlignment, 0u);
  }
}

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  for (int n_threads : {1, 2, 4, 8}) {
    ThreadPool pool(n_threads);
    EXPECT_EQ(pool.n_threads(), n_threads);
    for (int64_t n : {0, 1, 7, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(n, 3, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
      });
      for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    }
  }
}

TEST(ThreadPool, RunOnAllUsesEveryThreadRepeatedly) {
  ThreadPool pool(4);
  for (int round = 0; round < 100; ++round) {
    std::mutex m;
    std::set<int> seen;
    pool.run_on_all([&](int i) {
      std::lock_guard<std::mutex> lock(m);
      seen.insert(i);
    });
    ASSERT_EQ(seen, (std::set<int>{0, 1, 2, 3}));
  }
}

}  // namespace
}  // namespace loupe
