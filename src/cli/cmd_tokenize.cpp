#include "commands.h"
namespace loupe::cli {
void add_tokenize(CLI::App&) {}
}  // namespace loupe::cli
