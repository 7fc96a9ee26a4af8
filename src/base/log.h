// Minimal leveled logging to stderr. stdout belongs to command output (JSON, logits).
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace loupe {

enum class LogLevel { kDebug, kInfo, kWarn, kError, kCount };

void set_log_level(LogLevel level);
LogLevel log_level();
void log_message(LogLevel level, std::string_view message);

template <typename... Args>
void log_at(LogLevel level, fmt::format_string<Args...> f, Args&&... args) {
  if (level < log_level()) return;
  log_message(level, fmt::format(f, std::forward<Args>(args)...));
}

#define LOUPE_LOG_DEBUG(...) ::loupe::log_at(::loupe::LogLevel::kDebug, __VA_ARGS__)
#define LOUPE_LOG_INFO(...) ::loupe::log_at(::loupe::LogLevel::kInfo, __VA_ARGS__)
#define LOUPE_LOG_WARN(...) ::loupe::log_at(::loupe::LogLevel::kWarn, __VA_ARGS__)
#define LOUPE_LOG_ERROR(...) ::loupe::log_at(::loupe::LogLevel::kError, __VA_ARGS__)

}  // namespace loupe
