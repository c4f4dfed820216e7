// Reading coil's environment settings, shared by the runtime (COIL_STATS),
// libcoil_preload.so and coil-run (COIL_NATIVE_THREADS, COIL_VERBOSE, ...),
// so that every boolean variable takes the same words. Header-only: coil-run
// does not link libcoil.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coil::detail {

// parse_bool_setting() reads 1, yes, true or on as true and 0, no, false or
// off as false, in any case. Returns false, leaving *out alone, for any
// other text, the empty one included.
inline bool parse_bool_setting(std::string_view value, bool* out) noexcept {
  auto is = [value](std::string_view word) {
    if (value.size() != word.size()) return false;
    for (std::size_t i = 0; i < value.size(); ++i) {
      char c = value[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != word[i]) return false;
    }
    return true;
  };
  for (std::string_view word : {"1", "yes", "true", "on"}) {
    if (is(word)) return *out = true;
  }
  for (std::string_view word : {"0", "no", "false", "off"}) {
    if (is(word)) {
      *out = false;
      return true;
    }
  }
  return false;
}

// bool_setting() reads the boolean environment variable `name` with parse_bool_setting():
// fallback when it is unset or empty. A malformed value throws std::invalid_argument with a
// message naming the variable and the words it takes.
inline bool bool_setting(const char* name, bool fallback) {
  const char* value = std::getenv(name);
  bool on = fallback;
  if (value && *value && !parse_bool_setting(value, &on)) {
    throw std::invalid_argument(std::string("coil: ") + name + "='" + value +
                                "' is not a boolean; use 1 or 0 (also yes or no, true or false, "
                                "on or off)");
  }
  return on;
}

}  // namespace coil::detail
