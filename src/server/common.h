// Helpers every route of `loupe serve` shares: OpenAI-shaped errors, JSON output, request-field
// validation and the provenance record of sampler settings.
#pragma once

#include <httplib.h>

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "sample/sampler.h"

namespace loupe::server {

using json = nlohmann::ordered_json;

// An OpenAI-shaped error: {"error":{"message","type","code"}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string code;
  int retry_after = 0;  // seconds, for 503 (Retry-After header) when > 0
};

json error_json(const ApiError& e);
void send_error(httplib::Response& res, const ApiError& e);
ApiError bad_request(std::string message, std::string code = "");
// Maps an engine error to its HTTP status: bad input 400, queue full 503, else 500.
ApiError engine_error(const Status& s);

// JSON text with invalid UTF-8 replaced (model output may end mid-character).
std::string dump(const json& j);
std::string lower(std::string s);
// Host header without its port: "a:80" -> "a", "[::1]:80" -> "[::1]".
std::string host_without_port(const std::string& host);
std::string random_hex(size_t n);
// A float as its shortest decimal text reads (0.95f -> 0.95, not 0.949999988).
double shortest(float v);
// Every sampler setting, as recorded with an exchange.
json sampler_json(const sample::SamplerParams& p);

// Parses the body as a JSON object; on failure fills `error`.
std::optional<json> parse_body(const std::string& body, ApiError& error);

// Optional numeric fields: absent or null leaves `out` alone; wrong type or range is an error.
std::optional<ApiError> number_in(const json& body, const char* key, double lo, double hi,
                                  std::optional<double>& out);
std::optional<ApiError> int_in(const json& body, const char* key, int64_t lo, int64_t hi,
                               std::optional<int64_t>& out);

}  // namespace loupe::server
