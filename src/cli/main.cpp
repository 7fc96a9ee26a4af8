// loupe: a local LLM lab bench. Subcommands live in cmd_*.cpp.
#include <cstdio>
#include <string_view>

#include "commands.h"

namespace loupe::cli {

int report(const Status& status) {
  std::fprintf(stderr, "loupe: error: %s\n", status.message().c_str());
  return kExitError;
}

int& exit_status() {
  static int status = kExitOk;
  return status;
}

}  // namespace loupe::cli

int main(int argc, char** argv) {
  CLI::App app{"loupe " LOUPE_VERSION " - a local LLM lab bench: run, inspect, compare and break GGUF models"};
  app.set_version_flag("--version", "loupe " LOUPE_VERSION);
  app.require_subcommand(1);
  loupe::cli::add_inspect(app);
  loupe::cli::add_synth(app);
  loupe::cli::add_quantize(app);
  loupe::cli::add_tokenize(app);
  loupe::cli::add_template(app);
  loupe::cli::add_logits(app);
  loupe::cli::add_run(app);
  loupe::cli::add_chat(app);
  loupe::cli::add_demo(app);
  loupe::cli::add_bench(app);
  loupe::cli::add_serve(app);
  // llama.cpp's two-letter short flags, which CLI11 cannot name.
  for (int i = 1; i < argc; ++i) {
    const std::string_view a(argv[i]);
    if (a == "-jf") argv[i] = const_cast<char*>("--json-schema-file");
    if (a == "-np") argv[i] = const_cast<char*>("--parallel");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return loupe::cli::exit_status();
}
