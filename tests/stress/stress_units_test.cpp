// coil-stress's parts that need no network: the histogram, the stats and their framing, the
// JSON writer, the message pattern, the token bucket, the split of connections and the hints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "histogram.hpp"
#include "json_writer.hpp"
#include "options.hpp"
#include "pattern.hpp"
#include "report.hpp"
#include "report_channel.hpp"
#include "stats.hpp"
#include "token_bucket.hpp"

namespace coil_stress {
namespace {

TEST(StressHistogram, EveryValueLandsInABucketThatHoldsItWithin1Percent) {
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 0; v < 5000; ++v) values.push_back(v);
  for (std::uint64_t v = 5000; v < LatencyHistogram::kMaxMicros; v = v * 9 / 8 + 7)
    values.push_back(v);
  values.push_back(LatencyHistogram::kMaxMicros);
  std::size_t last_bucket = 0;
  for (std::uint64_t v : values) {
    std::size_t b = LatencyHistogram::bucket_of(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets) << v;
    ASSERT_GE(b, last_bucket) << "buckets must grow with the value, at " << v;
    last_bucket = b;
    std::uint64_t top = LatencyHistogram::bucket_top(b);
    ASSERT_GE(top, v);
    ASSERT_LE(static_cast<double>(top - v), static_cast<double>(v) / 128 + 1e-9) << v;
    if (b > 0) {
      ASSERT_LT(LatencyHistogram::bucket_top(b - 1), v) << v;
    }
  }
}

TEST(StressHistogram, PercentilesOfAUniformSpreadAreWithinTheBucketError) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100'000; ++v) h.record(v);
  EXPECT_EQ(h.count(), 100'000u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100'000u);
  EXPECT_NEAR(h.mean(), 50'000.5, 1e-6);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    double want = q * 100'000;
    EXPECT_NEAR(static_cast<double>(h.percentile(q)), want, want / 100) << q;
  }
  EXPECT_EQ(h.percentile(1.0), 100'000u);
  EXPECT_EQ(LatencyHistogram().percentile(0.5), 0u);
}

TEST(StressHistogram, MergingEqualsRecordingEverythingInOne) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> spread(5, 2);
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (int i = 0; i < 20'000; ++i) {
    auto v = static_cast<std::uint64_t>(spread(rng));
    (i % 3 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.percentile(q), all.percentile(q)) << q;
}

TEST(StressHistogram, EncodeDecodeRoundTripsAndRejectsTruncation) {
  LatencyHistogram h;
  for (std::uint64_t v : {3u, 300u, 30'000u, 3'000'000u}) h.record(v);
  std::vector<unsigned char> bytes;
  h.encode(bytes);
  LatencyHistogram back;
  std::size_t pos = 0;
  ASSERT_TRUE(back.decode(bytes, pos));
  EXPECT_EQ(pos, bytes.size());
  EXPECT_EQ(back.count(), 4u);
  EXPECT_EQ(back.percentile(0.75), h.percentile(0.75));
  bytes.pop_back();
  pos = 0;
  EXPECT_FALSE(LatencyHistogram().decode(bytes, pos));
}

Stats sample_stats(std::uint64_t scale) {
  Stats s;
  s.requested = 10 * scale;
  s.attempted = 9 * scale;
  s.established = 8 * scale;
  s.sent = 100 * scale;
  s.echoed = 99 * scale;
  s.lost = scale;
  s.connect_phase_ns = 1000 * scale;
  s.tcp_mem_bytes = 4096 * scale;
  s.rss_bytes = 1 << 20;
  s.finished = true;
  s.add_error(Phase::kConnect, ECONNREFUSED, scale);
  s.add_error(Phase::kRecv, kErrEof);
  s.connect_us.record(100 * scale);
  s.rtt_us.record(50 * scale);
  return s;
}

TEST(StressStats, MergeAddsCountsAndTakesTheLongestTimesAndLargestKernelFigures) {
  Stats total = sample_stats(1);
  total.merge(sample_stats(2));
  EXPECT_EQ(total.requested, 30u);
  EXPECT_EQ(total.established, 24u);
  EXPECT_EQ(total.lost, 3u);
  EXPECT_EQ(total.connect_phase_ns, 2000u);
  EXPECT_EQ(total.tcp_mem_bytes, 8192u);
  EXPECT_EQ(total.rss_bytes, 2u << 20);
  EXPECT_EQ(total.processes, 2u);
  EXPECT_EQ((total.errors[{Phase::kConnect, ECONNREFUSED}]), 3u);
  EXPECT_EQ((total.errors[{Phase::kRecv, kErrEof}]), 2u);
  EXPECT_EQ(total.error_count(), 5u);
  EXPECT_EQ(total.rtt_us.count(), 2u);
}

TEST(StressStats, FramesSurviveBeingSplitAnywhereOnThePipe) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  ASSERT_TRUE(send_stats(fds[1], sample_stats(1)));
  ASSERT_TRUE(send_stats(fds[1], sample_stats(3)));
  close(fds[1]);
  std::vector<char> bytes;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) bytes.insert(bytes.end(), buf, buf + n);
  close(fds[0]);

  StatsReader reader;
  std::vector<Stats> got;
  for (char c : bytes) {  // one byte at a time: the worst split
    reader.feed(&c, 1);
    Stats s;
    while (reader.next(s)) got.push_back(s);
  }
  ASSERT_FALSE(reader.bad());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].established, 8u);
  EXPECT_EQ(got[1].established, 24u);
  EXPECT_TRUE(got[1].finished);
  EXPECT_EQ((got[1].errors[{Phase::kConnect, ECONNREFUSED}]), 3u);
  EXPECT_EQ(got[1].connect_us.max(), 300u);

  StatsReader garbage;
  garbage.feed("not a frame at all", 18);
  Stats s;
  EXPECT_FALSE(garbage.next(s));
  EXPECT_TRUE(garbage.bad());
}

TEST(StressStats, ErrorNamesAreTheErrnoNames) {
  EXPECT_EQ(error_name(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(error_name(EADDRNOTAVAIL), "EADDRNOTAVAIL");
  EXPECT_EQ(error_name(kErrEof), "EOF");
  EXPECT_EQ(error_name(kErrCorrupt), "corrupt");
}

TEST(StressJson, EscapesStringsAndWritesNullForNonFiniteNumbers) {
  JsonWriter json;
  json.begin_object();
  json.member("text", "quote \" backslash \\ newline \n tab \t bell \a");
  json.member("nan", std::nan(""));
  json.member("half", 0.5);
  json.member("n", std::uint64_t{18'446'744'073'709'551'615u});
  json.key("list");
  json.begin_array();
  json.value(true);
  json.begin_object();
  json.end_object();
  json.end_array();
  json.end_object();
  EXPECT_EQ(json.text(),
            "{\n"
            "  \"text\": \"quote \\\" backslash \\\\ newline \\n tab \\t bell \\u0007\",\n"
            "  \"nan\": null,\n"
            "  \"half\": 0.5,\n"
            "  \"n\": 18446744073709551615,\n"
            "  \"list\": [\n"
            "    true,\n"
            "    {}\n"
            "  ]\n"
            "}\n");
}

TEST(StressPattern, DiffersByConnectionAndMessageAndRepeatsExactly) {
  std::vector<unsigned char> a(61);
  std::vector<unsigned char> b(61);
  fill_pattern(a.data(), a.size(), 5, 9);
  fill_pattern(b.data(), b.size(), 5, 9);
  EXPECT_EQ(a, b);
  fill_pattern(b.data(), b.size(), 5, 10);
  EXPECT_NE(a, b);
  fill_pattern(b.data(), b.size(), 6, 9);
  EXPECT_NE(a, b);
  fill_pattern(b.data(), b.size(), 9, 5);
  EXPECT_NE(a, b);
  std::vector<unsigned char> one(1);
  fill_pattern(one.data(), 1, 5, 9);  // a size below one word writes just that byte
  EXPECT_EQ(one[0], a[0]);
}

TEST(StressTokenBucket, HandsOutTheRateAndSavesOnlyTheBurst) {
  using namespace std::chrono_literals;
  auto t = TokenBucket::Clock::time_point{} + 1h;
  TokenBucket bucket(10, 2, t);  // 10 a second, up to 2 saved
  EXPECT_EQ(bucket.take(t), TokenBucket::Clock::duration::zero());
  auto wait = bucket.take(t);
  EXPECT_GT(wait, 99ms);
  EXPECT_LE(wait, 100ms);
  t += 100ms;
  EXPECT_EQ(bucket.take(t), TokenBucket::Clock::duration::zero());
  t += 10s;  // a long idle time saves only 2 tokens
  EXPECT_EQ(bucket.take(t), TokenBucket::Clock::duration::zero());
  EXPECT_EQ(bucket.take(t), TokenBucket::Clock::duration::zero());
  EXPECT_GT(bucket.take(t), TokenBucket::Clock::duration::zero());
  TokenBucket unlimited(0, 0, t);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(unlimited.take(t), TokenBucket::Clock::duration::zero());
}

TEST(StressOptions, SharesAreContiguousAndDifferByAtMostOne) {
  Options opts;
  opts.connections = 1'000'003;
  opts.procs = 7;
  std::uint64_t next = 0;
  for (int p = 0; p < opts.procs; ++p) {
    Share s = share_of(opts, p);
    EXPECT_EQ(s.first, next);
    EXPECT_TRUE(s.count == 142'857 || s.count == 142'858) << s.count;
    next += s.count;
  }
  EXPECT_EQ(next, opts.connections);
}

TEST(StressReport, HintsNameTheLimitOncePerKind) {
  Stats s;
  s.add_error(Phase::kSocket, EMFILE, 3);
  s.add_error(Phase::kConnect, EMFILE, 2);
  s.add_error(Phase::kConnect, EADDRNOTAVAIL);
  s.add_error(Phase::kConnect, ENOBUFS);
  s.add_error(Phase::kConnect, ECONNREFUSED);
  s.add_error(Phase::kConnect, ETIMEDOUT);
  std::vector<std::string> hints = limit_hints(s);
  ASSERT_EQ(hints.size(), 4u);
  auto mentions = [&](const char* text) {
    int n = 0;
    for (const std::string& h : hints) n += h.find(text) != std::string::npos;
    return n;
  };
  EXPECT_EQ(mentions("RLIMIT_NOFILE"), 1);
  EXPECT_EQ(mentions("net.ipv4.ip_local_port_range"), 1);
  EXPECT_EQ(mentions("net.ipv4.tcp_mem"), 1);
  EXPECT_EQ(mentions("net.core.somaxconn"), 1);
  EXPECT_TRUE(limit_hints(Stats()).empty());
}

}  // namespace
}  // namespace coil_stress
