// LatencyHistogram: bucket arithmetic, percentiles and the wire form.
#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

#include "wire.hpp"

namespace coil_stress {

std::size_t LatencyHistogram::bucket_of(std::uint64_t micros) {
  micros = std::min(micros, kMaxMicros);
  if (micros < kLinear) return static_cast<std::size_t>(micros);
  // shift >= 1 brings the value into [kHalf, kLinear): its top kSubBits bits.
  int shift = std::bit_width(micros) - kSubBits;
  std::uint64_t mantissa = micros >> shift;
  return static_cast<std::size_t>(kLinear + static_cast<std::uint64_t>(shift - 1) * kHalf +
                                  (mantissa - kHalf));
}

std::uint64_t LatencyHistogram::bucket_top(std::size_t bucket) {
  if (bucket < kLinear) return bucket;
  std::uint64_t k = bucket - kLinear;
  int shift = static_cast<int>(k / kHalf) + 1;
  std::uint64_t mantissa = k % kHalf + kHalf;
  return ((mantissa + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t micros) {
  micros = std::min(micros, kMaxMicros);
  ++buckets_[bucket_of(micros)];
  min_ = count_ == 0 ? micros : std::min(min_, micros);
  max_ = std::max(max_, micros);
  sum_ += micros;
  ++count_;
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (std::size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
  count_ += other.count_;
}

std::uint64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
  rank = std::clamp<std::uint64_t>(rank, 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(bucket_top(i), max_);
  }
  return max_;
}

void LatencyHistogram::encode(std::vector<unsigned char>& out) const {
  put(out, count_);
  put(out, min_);
  put(out, max_);
  put(out, sum_);
  auto used = static_cast<std::uint32_t>(
      std::count_if(buckets_.begin(), buckets_.end(), [](std::uint64_t n) { return n != 0; }));
  put(out, used);
  for (std::size_t i = 0; i < kBuckets; ++i) {
    if (buckets_[i] == 0) continue;
    put(out, static_cast<std::uint32_t>(i));
    put(out, buckets_[i]);
  }
}

bool LatencyHistogram::decode(const std::vector<unsigned char>& data, std::size_t& pos) {
  std::fill(buckets_.begin(), buckets_.end(), 0);
  std::uint32_t used = 0;
  if (!get(data, pos, count_) || !get(data, pos, min_) || !get(data, pos, max_) ||
      !get(data, pos, sum_) || !get(data, pos, used) || used > kBuckets)
    return false;
  std::uint64_t total = 0;
  for (std::uint32_t n = 0; n < used; ++n) {
    std::uint32_t index = 0;
    std::uint64_t value = 0;
    if (!get(data, pos, index) || !get(data, pos, value) || index >= kBuckets) return false;
    buckets_[index] = value;
    total += value;
  }
  return total == count_;
}

}  // namespace coil_stress
