// Loupe's own lab endpoints (/loupe/v1/*).
#include "server/app.h"

namespace loupe::server {

void install_lab(App&, httplib::Server&) {}

}  // namespace loupe::server
