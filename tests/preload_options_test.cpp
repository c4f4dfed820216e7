// The COIL_* settings of libcoil_preload.so and coil-run (preload/src/options.cpp): sizes, the
// checks on each variable and the messages that name it.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include "options.hpp"

namespace coil::preload {
namespace {

constexpr const char* kAllVariables[] = {kEnvThreads, kEnvStackSize, kEnvNativeThreads,
                                         kEnvVerbose};

// PreloadOptionsEnv clears the COIL_* variables around each test, so that the caller's
// environment does not leak in and a test's values do not leak out.
class PreloadOptionsEnv : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* variable : kAllVariables) unsetenv(variable);
  }
  // error_for() is options_from_env()'s message with variable=value set, or "" if it accepts it.
  static std::string error_for(const char* variable, const char* value) {
    setenv(variable, value, 1);
    Options opts;
    std::string error;
    const bool ok = options_from_env(&opts, &error);
    unsetenv(variable);
    return ok ? "" : error;
  }
};

std::optional<std::size_t> size_of(const char* text) {
  std::string error;
  return parse_size(text, &error);
}

std::string size_error(const char* text) {
  std::string error;
  EXPECT_FALSE(parse_size(text, &error).has_value()) << text;
  return error;
}

TEST(PreloadOptions, ParseSizeReadsBytesAndBinarySuffixes) {
  EXPECT_EQ(size_of("0"), 0u);
  EXPECT_EQ(size_of("1000"), 1000u);
  EXPECT_EQ(size_of("256K"), 262144u);
  EXPECT_EQ(size_of("256k"), 262144u);
  EXPECT_EQ(size_of("8M"), std::size_t{8} << 20);
  EXPECT_EQ(size_of("1g"), std::size_t{1} << 30);
}

TEST(PreloadOptions, ParseSizeRefusesWhatIsNotASize) {
  EXPECT_EQ(size_error(""), "empty");
  for (const char* text : {"12Q", "abc", "K", "-5", "+5", " 5", "5 ", "1.5M", "256KB", "256KiB"}) {
    EXPECT_EQ(size_error(text), "not a size") << text;
  }
}

TEST(PreloadOptions, ParseSizeRefusesOverflow) {
  EXPECT_EQ(size_error("99999999999999999999"), "too large");
  EXPECT_EQ(size_error("17179869184G"), "too large");  // 2^34 G is 2^64 bytes
  EXPECT_EQ(size_of("17179869183G"), std::size_t{17179869183} << 30);
}

TEST(PreloadOptions, FormatSizeUsesTheLargestExactSuffix) {
  EXPECT_EQ(format_size(0), "0");
  EXPECT_EQ(format_size(1000), "1000");
  EXPECT_EQ(format_size(kDefaultStackSize), "256K");
  EXPECT_EQ(format_size(kMainStackSize), "8M");
  EXPECT_EQ(format_size(kMaxStackSize), "1G");
  EXPECT_EQ(format_size((std::size_t{3} << 30) + 1024), "3145729K");
}

TEST(PreloadOptions, FormatSizeIsReadBackByParseSize) {
  for (const std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{1023},
                                  std::size_t{4096}, std::size_t{5} << 20, SIZE_MAX}) {
    EXPECT_EQ(size_of(format_size(bytes).c_str()), bytes) << bytes;
  }
}

TEST_F(PreloadOptionsEnv, UnsetOrEmptyVariablesKeepTheDefaults) {
  for (const char* variable : kAllVariables) setenv(variable, "", 1);
  Options opts{.threads = 7, .stack_size = 1, .native_threads = true, .verbose = true};
  std::string error;
  ASSERT_TRUE(options_from_env(&opts, &error)) << error;
  EXPECT_EQ(opts.threads, 1);
  EXPECT_EQ(opts.stack_size, kDefaultStackSize);
  EXPECT_FALSE(opts.native_threads);
  EXPECT_FALSE(opts.verbose);
}

TEST_F(PreloadOptionsEnv, ReadsEachVariable) {
  setenv(kEnvThreads, "1", 1);
  setenv(kEnvStackSize, "64K", 1);
  setenv(kEnvNativeThreads, "1", 1);
  setenv(kEnvVerbose, "TRUE", 1);
  Options opts;
  std::string error;
  ASSERT_TRUE(options_from_env(&opts, &error)) << error;
  EXPECT_EQ(opts.threads, 1);
  EXPECT_EQ(opts.stack_size, 64u * 1024);
  EXPECT_TRUE(opts.native_threads);
  EXPECT_TRUE(opts.verbose);
}

TEST_F(PreloadOptionsEnv, BooleansTakeOneZeroAndWords) {
  for (const char* yes : {"1", "yes", "Yes", "true", "on", "ON"}) {
    setenv(kEnvNativeThreads, yes, 1);
    Options opts;
    std::string error;
    ASSERT_TRUE(options_from_env(&opts, &error)) << yes << ": " << error;
    EXPECT_TRUE(opts.native_threads) << yes;
  }
  for (const char* no : {"0", "no", "false", "FALSE", "off"}) {
    setenv(kEnvNativeThreads, no, 1);
    Options opts{.native_threads = true};
    std::string error;
    ASSERT_TRUE(options_from_env(&opts, &error)) << no << ": " << error;
    EXPECT_FALSE(opts.native_threads) << no;
  }
}

TEST_F(PreloadOptionsEnv, StackSizeLimitsAreInclusive) {
  EXPECT_EQ(error_for(kEnvStackSize, "16K"), "");
  EXPECT_EQ(error_for(kEnvStackSize, "1G"), "");
  const std::string accepted = "use a byte count with an optional K, M or G suffix, from 16K to 1G";
  EXPECT_EQ(error_for(kEnvStackSize, "16383"), "COIL_STACK_SIZE=16383: too small; " + accepted);
  EXPECT_EQ(error_for(kEnvStackSize, "1025M"), "COIL_STACK_SIZE=1025M: too large; " + accepted);
  EXPECT_EQ(error_for(kEnvStackSize, "12Q"), "COIL_STACK_SIZE=12Q: not a size; " + accepted);
}

TEST_F(PreloadOptionsEnv, ThreadsMessagesNameTheVariableAndTheRange) {
  const std::string accepted = "use a whole number from 1 to 256";
  EXPECT_EQ(error_for(kEnvThreads, "0"), "COIL_THREADS=0: out of range; " + accepted);
  EXPECT_EQ(error_for(kEnvThreads, "257"), "COIL_THREADS=257: out of range; " + accepted);
  EXPECT_EQ(error_for(kEnvThreads, "-1"), "COIL_THREADS=-1: out of range; " + accepted);
  EXPECT_EQ(error_for(kEnvThreads, "99999999999"),
            "COIL_THREADS=99999999999: out of range; " + accepted);
  EXPECT_EQ(error_for(kEnvThreads, "abc"), "COIL_THREADS=abc: not a whole number; " + accepted);
  EXPECT_EQ(error_for(kEnvThreads, "1x"), "COIL_THREADS=1x: not a whole number; " + accepted);
}

TEST_F(PreloadOptionsEnv, AnyWorkerCountInRangeIsTaken) {
  for (const char* n : {"1", "2", "256"}) {
    setenv(kEnvThreads, n, 1);
    Options opts;
    std::string error;
    EXPECT_TRUE(options_from_env(&opts, &error)) << n << ": " << error;
    EXPECT_EQ(opts.threads, std::atoi(n));
  }
}

TEST_F(PreloadOptionsEnv, BadBooleanNamesTheVariable) {
  EXPECT_EQ(error_for(kEnvNativeThreads, "maybe"),
            "COIL_NATIVE_THREADS=maybe: not a boolean; use 1 or 0 (also yes or no, true or false, "
            "on or off)");
  EXPECT_EQ(error_for(kEnvVerbose, "2").rfind("COIL_VERBOSE=2: not a boolean; ", 0), 0u);
}

TEST_F(PreloadOptionsEnv, AFailureLeavesTheOptionsAlone) {
  setenv(kEnvStackSize, "64K", 1);
  setenv(kEnvVerbose, "junk", 1);
  Options opts;
  std::string error;
  EXPECT_FALSE(options_from_env(&opts, &error));
  EXPECT_EQ(opts.stack_size, kDefaultStackSize);
}

TEST(PreloadOptions, ParseOptionStoresOneFieldAndRefusesEmpty) {
  Options opts;
  std::string error;
  EXPECT_TRUE(parse_option(kEnvStackSize, "32K", &opts, &error));
  EXPECT_EQ(opts.stack_size, 32u * 1024);
  EXPECT_TRUE(parse_option(kEnvVerbose, "on", &opts, &error));
  EXPECT_TRUE(opts.verbose);
  EXPECT_FALSE(parse_option(kEnvStackSize, "", &opts, &error));
  EXPECT_EQ(error.rfind("empty; use a byte count", 0), 0u) << error;
  EXPECT_FALSE(parse_option(kEnvThreads, "", &opts, &error));
  EXPECT_EQ(error.rfind("empty; use a whole number", 0), 0u) << error;
  EXPECT_FALSE(parse_option("COIL_COLOUR", "1", &opts, &error));
  EXPECT_EQ(error, "not a coil setting");
}

}  // namespace
}  // namespace coil::preload
