#include "server/common.h"

#include <cctype>
#include <cmath>
#include <random>

#include <fmt/format.h>

namespace loupe::server {

json error_json(const ApiError& e) {
  json err = {{"message", e.message}, {"type", e.type}};
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", std::move(err)}};
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  if (e.retry_after > 0) res.set_header("Retry-After", std::to_string(e.retry_after));
  res.set_content(dump(error_json(e)), "application/json");
}

ApiError bad_request(std::string message, std::string code) {
  return {400, std::move(message), "invalid_request_error", std::move(code)};
}

ApiError engine_error(const Status& s) {
  if (s.code() == ErrorCode::kInvalidArgument || s.code() == ErrorCode::kOutOfRange)
    return bad_request(s.message());
  if (s.code() == ErrorCode::kUnavailable)
    return {503, s.message(), "server_error", "queue_full", 1};
  return {500, s.message(), "server_error", "internal_error"};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string host_without_port(const std::string& host) {
  if (!host.empty() && host.front() == '[') {
    const size_t close = host.find(']');
    return close == std::string::npos ? host : host.substr(0, close + 1);
  }
  const size_t colon = host.find(':');
  if (colon != std::string::npos && host.find(':', colon + 1) == std::string::npos)
    return host.substr(0, colon);
  return host;
}

std::string random_hex(size_t n) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* digits = "0123456789abcdef";
  std::string s(n, '0');
  for (char& c : s) c = digits[rng() % 16];
  return s;
}

double shortest(float v) {
  return std::stod(fmt::format("{}", v));
}

json sampler_json(const sample::SamplerParams& p) {
  json j;
  j["temperature"] = shortest(p.temp);
  j["top_k"] = p.top_k;
  j["top_p"] = shortest(p.top_p);
  j["min_p"] = shortest(p.min_p);
  j["typ_p"] = shortest(p.typ_p);
  j["repeat_penalty"] = shortest(p.penalty_repeat);
  j["repeat_last_n"] = p.penalty_last_n;
  j["presence_penalty"] = shortest(p.penalty_present);
  j["frequency_penalty"] = shortest(p.penalty_freq);
  j["mirostat"] = p.mirostat;
  j["mirostat_tau"] = shortest(p.mirostat_tau);
  j["mirostat_eta"] = shortest(p.mirostat_eta);
  j["ignore_eos"] = p.ignore_eos;
  json bias = json::array();
  for (const auto& b : p.logit_bias)
    bias.push_back({b.token, std::isinf(b.bias) ? json("-inf") : json(shortest(b.bias))});
  j["logit_bias"] = std::move(bias);
  j["samplers"] = sample::sampler_order_string(p.samplers);
  return j;
}

std::optional<json> parse_body(const std::string& body, ApiError& error) {
  json j;
  try {
    j = json::parse(body);
  } catch (const std::exception& e) {
    error = bad_request(std::string("the body is not valid JSON: ") + e.what(), "invalid_json");
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = bad_request("the body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

std::optional<ApiError> number_in(const json& body, const char* key, double lo, double hi,
                                  std::optional<double>& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_number())
    return bad_request(fmt::format("'{}' must be a number", key), "invalid_type");
  const double v = body[key].get<double>();
  if (!(v >= lo && v <= hi))
    return bad_request(fmt::format("'{}' is {}: it must be between {} and {}", key, v, lo, hi),
                       "invalid_value");
  out = v;
  return std::nullopt;
}

std::optional<ApiError> int_in(const json& body, const char* key, int64_t lo, int64_t hi,
                               std::optional<int64_t>& out) {
  if (!body.contains(key) || body[key].is_null()) return std::nullopt;
  if (!body[key].is_number_integer())
    return bad_request(fmt::format("'{}' must be an integer", key), "invalid_type");
  const int64_t v = body[key].get<int64_t>();
  if (v < lo || v > hi)
    return bad_request(fmt::format("'{}' is {}: it must be between {} and {}", key, v, lo, hi),
                       "invalid_value");
  out = v;
  return std::nullopt;
}

}  // namespace loupe::server
