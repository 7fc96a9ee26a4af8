// One file per subcommand; each registers itself on the root app.
#pragma once

#include <CLI/CLI.hpp>

#include "base/status.h"

namespace loupe::cli {

// Exit statuses shared by all commands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;      // bad input, failed operation
inline constexpr int kExitUsage = 2;      // bad command line (CLI11's own)

// Prints "loupe: error: MESSAGE" to stderr and returns kExitError.
int report(const Status& status);

// The subcommand's exit status, set by its callback.
int& exit_status();

void add_inspect(CLI::App& app);
void add_synth(CLI::App& app);
void add_quantize(CLI::App& app);
void add_tokenize(CLI::App& app);    // tokenize and detokenize
void add_template(CLI::App& app);
void add_logits(CLI::App& app);
void add_run(CLI::App& app);
void add_chat(CLI::App& app);
void add_demo(CLI::App& app);
void add_bench(CLI::App& app);
void add_serve(CLI::App& app);   // serve and sessions

}  // namespace loupe::cli
