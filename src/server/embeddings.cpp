// POST /v1/embeddings.
#include "server/app.h"

namespace loupe::server {

void install_embeddings(App&, httplib::Server&) {}

}  // namespace loupe::server
