// The settings of libcoil_preload.so, one environment variable each. coil-run turns its flags into
// these variables (and checks them before it execs); the library reads them again at start-up, so
// that a program started with LD_PRELOAD by hand gets the same checks.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace coil::preload {

inline constexpr const char* kEnvThreads = "COIL_THREADS";
inline constexpr const char* kEnvStackSize = "COIL_STACK_SIZE";
inline constexpr const char* kEnvNativeThreads = "COIL_NATIVE_THREADS";
inline constexpr const char* kEnvVerbose = "COIL_VERBOSE";
// Read by libcoil itself (coil/stats.hpp); checked here so that coil-run refuses a bad value.
inline constexpr const char* kEnvStats = "COIL_STATS";

// Workers: how many scheduler threads may be asked for.
inline constexpr int kMaxThreads = 256;

// Stack sizes a green thread may be given (--stack-size); main() gets at least kMainStackSize.
inline constexpr std::size_t kMinStackSize = 16 * 1024;
inline constexpr std::size_t kMaxStackSize = std::size_t{1} << 30;
inline constexpr std::size_t kDefaultStackSize = 256 * 1024;
inline constexpr std::size_t kMainStackSize = 8 * 1024 * 1024;

struct Options {
  int threads = 1;                             // COIL_THREADS: 1..kMaxThreads
  std::size_t stack_size = kDefaultStackSize;  // COIL_STACK_SIZE: kMinStackSize..kMaxStackSize
  bool native_threads = false;                 // COIL_NATIVE_THREADS: 0 or 1
  bool verbose = false;                        // COIL_VERBOSE: 0 or 1
  bool stats = false;                          // COIL_STATS: 0 or 1
};
// The booleans also take no/yes, false/true and off/on, in any case.

// parse_size() reads a byte count: digits with an optional binary suffix K, M or G (case does not
// matter; "256K" is 262144). nullopt and *error set (a sentence without the variable's name) if
// the text is empty, not a number, has another suffix, or overflows.
std::optional<std::size_t> parse_size(std::string_view text, std::string* error);

// parse_option() checks one variable's value as options_from_env() does and stores it in the
// field of *out that the variable sets. An empty value is bad here (options_from_env() skips an
// empty variable instead). On a bad value, or a name that is not one of the kEnv* above, it
// returns false with *error saying what is wrong and what is accepted but naming neither the
// variable nor the value ("not a size; use ..."), for a caller that names them its own way
// (coil-run names its flag).
bool parse_option(std::string_view variable, std::string_view value, Options* out,
                  std::string* error);

// options_from_env() reads the COIL_* variables above; an unset or empty variable keeps its
// default. On a bad value it returns false with *error naming the variable, the value and what
// is accepted, e.g. "COIL_STACK_SIZE=12Q: ...".
bool options_from_env(Options* out, std::string* error);

// format_size() prints a byte count the way parse_size() reads it back ("256K", "8M", "1000").
std::string format_size(std::size_t bytes);

}  // namespace coil::preload
