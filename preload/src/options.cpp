// The COIL_* settings, read and checked (options.hpp). Both libcoil_preload.so, before main() and
// on every green pthread_create(), and coil-run, before it execs, use this one file, so a value is
// judged the same way whoever reads it.
//
// No exception leaves it: the good path reads the environment without allocating, and the only
// exception the error path can meet, std::bad_alloc while a message is built, is caught (the
// error is then shorter, or empty, but still an error).
#include "options.hpp"

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <new>
#include <string>
#include <utility>

#include "coil/detail/settings.hpp"

namespace coil::preload {
namespace {

// fail() sets *error to the parts, joined, and returns false. Out of memory it keeps what fits.
bool fail(std::string* error, std::initializer_list<std::string_view> parts) {
  try {
    error->clear();
    for (const std::string_view part : parts) error->append(part);
  } catch (const std::bad_alloc&) {
  }
  return false;
}

std::string threads_accepted() {
  return "use a whole number from 1 to " + std::to_string(kMaxThreads);
}

std::string size_accepted() {
  return "use a byte count with an optional K, M or G suffix, from " + format_size(kMinStackSize) +
         " to " + format_size(kMaxStackSize);
}

bool parse_threads(std::string_view value, Options* out, std::string* error) {
  const char* end = value.data() + value.size();
  int n = 0;
  const auto [stop, ec] = std::from_chars(value.data(), end, n);
  if (value.empty()) return fail(error, {"empty; ", threads_accepted()});
  if (ec == std::errc::invalid_argument || stop != end) {
    return fail(error, {"not a whole number; ", threads_accepted()});
  }
  if (ec == std::errc::result_out_of_range || n < 1 || n > kMaxThreads) {
    return fail(error, {"out of range; ", threads_accepted()});
  }
  out->threads = n;
  return true;
}

bool parse_stack_size(std::string_view value, Options* out, std::string* error) {
  std::string why;
  const std::optional<std::size_t> size = parse_size(value, &why);
  if (!size) return fail(error, {why, "; ", size_accepted()});
  if (*size < kMinStackSize) return fail(error, {"too small; ", size_accepted()});
  if (*size > kMaxStackSize) return fail(error, {"too large; ", size_accepted()});
  out->stack_size = *size;
  return true;
}

bool parse_bool(std::string_view value, bool* out, std::string* error) {
  if (detail::parse_bool_setting(value, out)) return true;
  return fail(error, {value.empty() ? "empty" : "not a boolean",
                      "; use 1 or 0 (also yes or no, true or false, on or off)"});
}

// suffix_shift() is the power of two a size suffix stands for: none 0, K 10, M 20, G 30.
std::optional<int> suffix_shift(std::string_view suffix) {
  if (suffix.empty()) return 0;
  if (suffix.size() != 1) return std::nullopt;
  switch (suffix[0]) {
    case 'k':
    case 'K':
      return 10;
    case 'm':
    case 'M':
      return 20;
    case 'g':
    case 'G':
      return 30;
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<std::size_t> parse_size(std::string_view text, std::string* error) {
  const char* end = text.data() + text.size();
  std::size_t count = 0;
  const auto [stop, ec] = std::from_chars(text.data(), end, count);
  const std::optional<int> shift = suffix_shift(std::string_view(stop, end - stop));
  if (text.empty()) {
    fail(error, {"empty"});
  } else if (ec == std::errc::invalid_argument || !shift) {
    fail(error, {"not a size"});
  } else if (ec == std::errc::result_out_of_range || count > (SIZE_MAX >> *shift)) {
    fail(error, {"too large"});
  } else {
    return count << *shift;
  }
  return std::nullopt;
}

bool parse_option(std::string_view variable, std::string_view value, Options* out,
                  std::string* error) {
  try {
    if (variable == kEnvThreads) return parse_threads(value, out, error);
    if (variable == kEnvStackSize) return parse_stack_size(value, out, error);
    if (variable == kEnvNativeThreads) return parse_bool(value, &out->native_threads, error);
    if (variable == kEnvVerbose) return parse_bool(value, &out->verbose, error);
    if (variable == kEnvStats) return parse_bool(value, &out->stats, error);
    return fail(error, {"not a coil setting"});
  } catch (const std::bad_alloc&) {
    return fail(error, {"out of memory"});
  }
}

bool options_from_env(Options* out, std::string* error) {
  Options opts;
  for (const char* variable :
       {kEnvThreads, kEnvStackSize, kEnvNativeThreads, kEnvVerbose, kEnvStats}) {
    const char* value = std::getenv(variable);
    if (value == nullptr || *value == '\0') continue;
    std::string why;
    if (!parse_option(variable, value, &opts, &why)) {
      return fail(error, {variable, "=", value, ": ", why});
    }
  }
  *out = opts;
  return true;
}

std::string format_size(std::size_t bytes) {
  constexpr std::pair<int, char> kUnits[] = {{30, 'G'}, {20, 'M'}, {10, 'K'}};
  for (const auto& [shift, suffix] : kUnits) {
    const std::size_t unit = std::size_t{1} << shift;
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + suffix;
  }
  return std::to_string(bytes);
}

}  // namespace coil::preload
