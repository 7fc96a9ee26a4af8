// Locating ../shared/testdata: LOUPE_TESTDATA, else the default next to the checkout.
// Tests that need it call LOUPE_REQUIRE_TESTDATA(), which skips (by name) without it.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace loupe::testing {

// The testdata root, or "" when it does not exist.
std::string testdata_dir();
// Path of a file under the testdata root.
std::string testdata_path(const std::string& relative);
// All files under testdata/<subdir> whose name ends with `suffix`, sorted.
std::vector<std::string> testdata_files(const std::string& subdir, const std::string& suffix);
// A fresh empty directory for the current test.
std::string temp_dir();

}  // namespace loupe::testing

#define LOUPE_REQUIRE_TESTDATA()                                                     \
  do {                                                                               \
    if (::loupe::testing::testdata_dir().empty())                                    \
      GTEST_SKIP() << "testdata not found (set LOUPE_TESTDATA to ../shared/testdata)"; \
  } while (0)
