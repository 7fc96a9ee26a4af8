#include "common/testdata.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include <unistd.h>

namespace fs = std::filesystem;

namespace loupe::testing {

std::string testdata_dir() {
  const char* env = std::getenv("LOUPE_TESTDATA");
  fs::path dir = env != nullptr && *env != '\0' ? env : "../shared/testdata";
  std::error_code ec;
  // A relative path is taken from the current directory, else from the source root
  // (ctest runs tests from the build tree; .ci/run passes ../shared/testdata).
  if (dir.is_relative() && !fs::is_directory(dir, ec)) dir = fs::path(LOUPE_SOURCE_DIR) / dir;
  if (!fs::is_directory(dir, ec)) return "";
  return fs::absolute(dir).lexically_normal().string();
}

std::string testdata_path(const std::string& relative) {
  return (fs::path(testdata_dir()) / relative).string();
}

std::vector<std::string> testdata_files(const std::string& subdir, const std::string& suffix) {
  std::vector<std::string> out;
  std::string root = testdata_dir();
  if (root.empty()) return out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(root) / subdir, ec)) {
    std::string p = entry.path().string();
    if (p.size() >= suffix.size() && p.compare(p.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(p);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string temp_dir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "loupe";
  std::replace(name.begin(), name.end(), '/', '_');
  fs::path dir = fs::temp_directory_path() / ("loupe-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

}  // namespace loupe::testing
