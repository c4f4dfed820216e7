// LatencyHistogram: durations in log-linear (HDR-style) buckets, mergeable across processes.
#pragma once

#include <cstdint>
#include <vector>

namespace coil_stress {

// LatencyHistogram counts durations in microseconds. Why buckets and not the samples: a million
// connections pinging for minutes make hundreds of millions of round trips, and the processes'
// results must be merged; a fixed set of counters costs the same whatever the count, merges by
// adding, and travels over a pipe in a few KB. The buckets are log-linear as in HdrHistogram:
// below 256 us one bucket per microsecond, above it 128 buckets per power of two, so a value is
// known to within 1/128 (0.8%) of itself. Values above kMaxMicros (71 minutes) count as
// kMaxMicros. count, min, max and sum are exact.
class LatencyHistogram {
 public:
  static constexpr int kSubBits = 8;                        // 256 linear buckets at the bottom
  static constexpr std::uint64_t kLinear = 1u << kSubBits;  // 256
  static constexpr std::uint64_t kHalf = kLinear / 2;       // 128 buckets per power of two
  static constexpr int kMaxBits = 32;
  static constexpr std::uint64_t kMaxMicros = (std::uint64_t{1} << kMaxBits) - 1;
  static constexpr std::size_t kBuckets = kLinear + (kMaxBits - kSubBits) * kHalf;

  LatencyHistogram() : buckets_(kBuckets, 0) {}

  // record() counts one duration of micros microseconds.
  void record(std::uint64_t micros);

  // merge() adds other's counts to this one.
  void merge(const LatencyHistogram& other);

  // percentile() returns the value (us) at or below which a fraction q (0..1) of the counts lie:
  // the top of that sample's bucket, never above max(). 0 when empty.
  std::uint64_t percentile(double q) const;

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ ? min_ : 0; }
  std::uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0; }

  // encode() appends the histogram to out (used buckets only); decode() reads it back from
  // data at pos, advancing pos, and returns false on malformed input.
  void encode(std::vector<unsigned char>& out) const;
  bool decode(const std::vector<unsigned char>& data, std::size_t& pos);

  // bucket_of() and bucket_top() map a value to its bucket and a bucket to the largest value in
  // it; exposed for tests.
  static std::size_t bucket_of(std::uint64_t micros);
  static std::uint64_t bucket_top(std::size_t bucket);

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t sum_ = 0;
};

}  // namespace coil_stress
