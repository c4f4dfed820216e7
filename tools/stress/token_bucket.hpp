// TokenBucket: paces new connections to --rate per second, with a small burst allowance.
#pragma once

#include <algorithm>
#include <chrono>

namespace coil_stress {

// TokenBucket hands out rate tokens a second and saves up to burst of them while nobody asks. A
// bucket rather than a fixed gap between connects: the dialer is a coroutine that may run late
// (the thread was busy with echoes), and the saved tokens let it catch up without exceeding the
// rate over any window longer than burst / rate. rate <= 0 means no limit.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate, double burst, Clock::time_point now)
      : rate_(rate), burst_(std::max(1.0, burst)), tokens_(1.0), last_(now) {}

  // take() takes a token and returns zero, or returns how long to wait until one is there.
  Clock::duration take(Clock::time_point now) {
    if (rate_ <= 0) return Clock::duration::zero();
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + std::max(0.0, elapsed) * rate_);
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return Clock::duration::zero();
    }
    auto wait = std::chrono::duration<double>((1.0 - tokens_) / rate_);
    return std::max<Clock::duration>(std::chrono::duration_cast<Clock::duration>(wait),
                                     std::chrono::microseconds(1));
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace coil_stress
