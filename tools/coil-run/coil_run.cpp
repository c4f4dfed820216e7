// coil-run: runs an unmodified, dynamically linked program on coil.
//
//   coil-run [--threads N] [--stack-size SIZE] [--native-threads] [--verbose] [--stats] [--]
//            program args...
//
// It execs the program with libcoil_preload.so appended to LD_PRELOAD and its settings in the
// COIL_* variables (preload/src/options.hpp); the library does the rest at start-up (main() becomes
// a coroutine, pthreads green threads; docs/preload.md). Each flag overrides its variable.
//
// coil-run checks every setting with the library's own code (options.cpp is compiled into both)
// before it execs, so a bad value is refused here, with status 2, rather than by the library
// in the program's process. It exits 127 when the program is not found and 126 when it cannot be
// run, as shells do; otherwise the exit status is the program's.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "options.hpp"

namespace {

namespace fs = std::filesystem;
namespace preload = coil::preload;

constexpr int kRefused = 2;          // a bad flag or value, or no library: nothing was run
constexpr int kCannotExecute = 126;  // the program exists but exec failed
constexpr int kNotFound = 127;       // no such program
constexpr const char* kEnvLibrary = "COIL_PRELOAD_LIBRARY";
constexpr const char* kLibraryName = "libcoil_preload.so";

// Flags is the command line. A flag not given is nullopt: the variable the caller set, or the
// library's default, stands.
struct Flags {
  std::optional<std::string> threads;
  std::optional<std::string> stack_size;
  std::optional<std::string> native_threads;
  std::optional<std::string> verbose;
  std::optional<std::string> stats;
  std::vector<std::string> command;  // the program and its arguments
};

// FlagValues is what CLI11 binds the flags to while it parses.
struct FlagValues {
  std::string threads;
  std::string stack_size;
  std::string native_threads;  // "true" when given bare
  std::string verbose;
  std::string stats;
};

// refuse() ends coil-run with status 2 and the reason, before anything was run.
[[noreturn]] void refuse(const std::string& reason) {
  std::fprintf(stderr, "coil-run: %s\n", reason.c_str());
  std::exit(kRefused);
}

void set_env(const char* variable, const std::string& value) {
  if (setenv(variable, value.c_str(), 1) != 0) {
    refuse(std::string("cannot set ") + variable + ": " + std::strerror(errno));
  }
}

// library_candidates() are the places of libcoil_preload.so beside coil-run, in the order they
// are tried: the build tree's (bin/../lib), then the installed one (bin/../<libdir>).
std::vector<fs::path> library_candidates() {
  std::error_code ec;
  const fs::path bin = fs::read_symlink("/proc/self/exe", ec).parent_path();
  std::vector<fs::path> candidates;
  for (const char* libdir : {"lib", COIL_INSTALL_LIBDIR}) {
    const fs::path candidate = (bin / ".." / libdir / kLibraryName).lexically_normal();
    if (candidates.empty() || candidates.back() != candidate) candidates.push_back(candidate);
  }
  return candidates;
}

std::string joined(const std::vector<fs::path>& paths, const char* separator) {
  std::string text;
  for (const fs::path& path : paths) text += (text.empty() ? "" : separator) + path.string();
  return text;
}

std::string help_footer() {
  const std::string stack = preload::format_size(preload::kDefaultStackSize);
  const std::string main = preload::format_size(preload::kMainStackSize);
  const std::string pad = "\n                        ";
  return "main() gets a stack of at least " + main +
         ", or the native stack limit (ulimit -s) when that is larger.\n"
         "\n"
         "Environment (a flag overrides its variable; the booleans take 1 or 0):\n"
         "  COIL_THREADS          as --threads (default 1)\n"
         "  COIL_STACK_SIZE       as --stack-size (default " +
         stack +
         ")\n"
         "  COIL_NATIVE_THREADS   as --native-threads (default 0)\n"
         "  COIL_VERBOSE          as --verbose (default 0)\n"
         "  COIL_STATS            as --stats (default 0)\n"
         "  COIL_PRELOAD_LIBRARY  the library to preload; if unset, the first of" +
         pad + joined(library_candidates(), pad.c_str()) +
         "\n"
         "  LD_PRELOAD            kept; the library is appended to it\n"
         "\n"
         "Exit status: the program's; 2 if coil-run refuses (bad flag or value, no library),\n"
         "126 if the program cannot be executed, 127 if it is not found.\n"
         "\n"
         "Limits:\n"
         "  - RLIMIT_NOFILE (ulimit -n) caps the connections per process.\n"
         "  - __thread and thread_local data belong to the OS thread (the worker), which green\n"
         "    threads share, not to the green thread.\n"
         "  - Green threads are not preempted: a CPU-bound loop holds the worker until it makes a\n"
         "    call that waits.\n"
         "  - With --threads above 1, a green thread stays on the worker it was placed on, and\n"
         "    a deadlock (every thread blocked for good) is not reported.\n"
         "  - Statically linked programs are not covered: LD_PRELOAD does not apply to them.";
}

// HelpFormatter is CLI11's, with coil-run's usage line: CLI11 2.1 does not know that the
// positional arguments are a command.
class HelpFormatter : public CLI::Formatter {
 public:
  HelpFormatter() { column_width(24); }
  std::string make_usage(const CLI::App*, std::string) const override {
    return "Usage: coil-run [options] [--] program args...\n";
  }
};

// given() is the value a flag was given, or nullopt.
template <typename T>
std::optional<T> given(const CLI::App& app, const char* flag, const T& value) {
  return app.count(flag) != 0 ? std::optional<T>(value) : std::nullopt;
}

// add_flags() declares the flags on app, bound to *flags.
void add_flags(CLI::App* app, FlagValues* flags) {
  const auto last = CLI::MultiOptionPolicy::TakeLast;
  app->add_option("--threads", flags->threads,
                  "Worker threads, 1 to " + std::to_string(preload::kMaxThreads) +
                      " (default 1): main()'s and N - 1 more; green threads go round robin")
      ->type_name("N")
      ->multi_option_policy(last);
  app->add_option("--stack-size", flags->stack_size,
                  "Green thread stack: bytes, suffix K, M or G, " +
                      preload::format_size(preload::kMinStackSize) + " to " +
                      preload::format_size(preload::kMaxStackSize) + " (default " +
                      preload::format_size(preload::kDefaultStackSize) + ")")
      ->type_name("SIZE")
      ->multi_option_policy(last);
  app->add_flag("--native-threads", flags->native_threads,
                "Keep pthreads as OS threads; only main() runs as a coroutine");
  app->add_flag("--verbose", flags->verbose,
                "Print the settings to stderr before the program starts");
  app->add_flag("--stats", flags->stats,
                "Print coil's runtime statistics (switches, spawns, epoll waits, syscalls "
                "avoided, stack pool) to stderr when the program exits");
}

// take_command() sets flags->command from what follows the flags: everything from the first
// argument that is not a flag (or after a "--") is the program's.
void take_command(std::vector<std::string> rest, Flags* flags) {
  if (!rest.empty() && rest.front() == "--") {
    rest.erase(rest.begin());
  } else if (!rest.empty() && rest.front().starts_with('-')) {
    refuse("unknown option " + rest.front() + "; see coil-run --help");
  }
  if (rest.empty()) refuse("no program given; usage: coil-run [options] [--] program args...");
  flags->command = std::move(rest);
}

Flags parse_flags(int argc, char** argv) {
  CLI::App app{
      "coil-run: runs an unmodified, dynamically linked program on coil. main() runs as a\n"
      "coroutine and each pthread as a green thread (a coroutine), whose blocking calls park\n"
      "it instead of blocking the OS thread.",
      "coil-run"};
  FlagValues values;
  add_flags(&app, &values);
  app.formatter(std::make_shared<HelpFormatter>());
  app.footer(help_footer());
  app.prefix_command();  // stop at the program: its own flags are not coil-run's
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::exit(app.exit(e));
  } catch (const CLI::ParseError& e) {
    refuse(std::string(e.what()) + "; see coil-run --help");
  }
  Flags flags{.threads = given(app, "--threads", values.threads),
              .stack_size = given(app, "--stack-size", values.stack_size),
              .native_threads = given(app, "--native-threads", values.native_threads),
              .verbose = given(app, "--verbose", values.verbose),
              .stats = given(app, "--stats", values.stats)};
  take_command(app.remaining(), &flags);
  return flags;
}

// forward_value() checks a flag's value as the library will and puts it in its variable. The
// message names the flag, not the variable.
void forward_value(const char* flag, const std::optional<std::string>& value,
                   const char* variable) {
  if (!value) return;
  preload::Options scratch;
  std::string why;
  if (!preload::parse_option(variable, *value, &scratch, &why)) {
    refuse(flag + ("=" + *value) + ": " + why);
  }
  set_env(variable, *value);
}

// settle_options() puts the flags into the COIL_* variables, reads all of them back with the
// library's code and writes them out again in canonical form.
preload::Options settle_options(const Flags& flags) {
  forward_value("--threads", flags.threads, preload::kEnvThreads);
  forward_value("--stack-size", flags.stack_size, preload::kEnvStackSize);
  forward_value("--native-threads", flags.native_threads, preload::kEnvNativeThreads);
  forward_value("--verbose", flags.verbose, preload::kEnvVerbose);
  forward_value("--stats", flags.stats, preload::kEnvStats);
  preload::Options opts;
  std::string error;
  if (!preload::options_from_env(&opts, &error)) refuse(error);
  set_env(preload::kEnvThreads, std::to_string(opts.threads));
  set_env(preload::kEnvStackSize, preload::format_size(opts.stack_size));
  set_env(preload::kEnvNativeThreads, opts.native_threads ? "1" : "0");
  set_env(preload::kEnvVerbose, opts.verbose ? "1" : "0");
  set_env(preload::kEnvStats, opts.stats ? "1" : "0");
  return opts;
}

// preloadable() refuses a library that ld.so could not load or LD_PRELOAD could not name.
fs::path preloadable(const fs::path& library, const std::string& origin) {
  std::error_code ec;
  const fs::file_status status = fs::status(library, ec);
  if (ec) refuse(origin + ": " + ec.message());
  if (!fs::is_regular_file(status)) refuse(origin + ": not a regular file");
  const fs::path absolute = fs::absolute(library).lexically_normal();
  if (absolute.string().find_first_of(": ") != std::string::npos) {
    refuse(origin + ": LD_PRELOAD cannot name a path with a colon or a space");
  }
  return absolute;
}

// find_library() is the libcoil_preload.so to preload: COIL_PRELOAD_LIBRARY, else the first of
// library_candidates() that exists.
fs::path find_library() {
  const char* given = std::getenv(kEnvLibrary);
  if (given != nullptr && *given != '\0') {
    return preloadable(given, std::string(kEnvLibrary) + "=" + given);
  }
  const std::vector<fs::path> candidates = library_candidates();
  for (const fs::path& candidate : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec)) return preloadable(candidate, candidate.string());
  }
  refuse(std::string("cannot find ") + kLibraryName + " (looked for " + joined(candidates, ", ") +
         "); set " + kEnvLibrary + " to its path");
}

// listed() says whether the LD_PRELOAD value already names library. ld.so splits it at colons
// and spaces; a name without a slash is a search, never this path.
bool listed(std::string_view preload_list, const fs::path& library) {
  std::size_t start = 0;
  while (start <= preload_list.size()) {
    std::size_t stop = preload_list.find_first_of(": ", start);
    if (stop == std::string_view::npos) stop = preload_list.size();
    const std::string entry(preload_list.substr(start, stop - start));
    std::error_code ec;
    if (entry.find('/') != std::string::npos &&
        (entry == library.string() || fs::equivalent(entry, library, ec))) {
      return true;
    }
    start = stop + 1;
  }
  return false;
}

// with_library() is LD_PRELOAD with library appended after the entries already there.
std::string with_library(const char* current, const fs::path& library) {
  const std::string list = current != nullptr ? current : "";
  if (listed(list, library)) return list;
  if (list.empty() || list.back() == ':' || list.back() == ' ') return list + library.string();
  return list + ":" + library.string();
}

void print_settings(const std::string& preload_list) {
  std::fprintf(stderr, "coil-run: LD_PRELOAD=%s\n", preload_list.c_str());
  for (const char* variable :
       {preload::kEnvThreads, preload::kEnvStackSize, preload::kEnvNativeThreads,
        preload::kEnvVerbose, preload::kEnvStats}) {
    std::fprintf(stderr, "coil-run: %s=%s\n", variable, std::getenv(variable));
  }
}

[[noreturn]] void exec_program(const std::vector<std::string>& command) {
  std::vector<char*> args;
  for (const std::string& arg : command) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  execvp(args[0], args.data());
  const int error = errno;
  std::fprintf(stderr, "coil-run: cannot run '%s': %s\n", args[0], std::strerror(error));
  std::exit(error == ENOENT ? kNotFound : kCannotExecute);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Flags flags = parse_flags(argc, argv);
    const preload::Options opts = settle_options(flags);
    const std::string preload_list = with_library(std::getenv("LD_PRELOAD"), find_library());
    set_env("LD_PRELOAD", preload_list);
    if (opts.verbose) print_settings(preload_list);
    exec_program(flags.command);
  } catch (const std::exception& e) {
    refuse(e.what());
  }
}
