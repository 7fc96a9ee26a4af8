// Runs a program (the loupe binary, in end-to-end tests) and captures what it did.
#pragma once

#include <string>
#include <vector>

namespace loupe::testing {

struct ProcessResult {
  int exit_code = -1;   // valid when !signaled
  bool signaled = false;
  int signal = 0;
  std::string out;
  std::string err;
};

ProcessResult run_process(const std::vector<std::string>& args, const std::string& input = "");

// Runs the loupe binary under test with `args`.
ProcessResult run_loupe(const std::vector<std::string>& args, const std::string& input = "");

}  // namespace loupe::testing
