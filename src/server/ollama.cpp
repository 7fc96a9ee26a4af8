// The Ollama API (/api/*).
#include "server/app.h"

namespace loupe::server {

void install_ollama(App&, httplib::Server&) {}

}  // namespace loupe::server
