// Framing of Stats over a pipe.
#include "report_channel.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

#include "wire.hpp"

namespace coil_stress {

namespace {

constexpr std::uint32_t kFrameMagic = 0x53544331;         // "1CTS"
constexpr std::uint32_t kMaxFrame = 16u * 1024u * 1024u;  // far above any real frame
constexpr std::size_t kHeader = 2 * sizeof(std::uint32_t);
constexpr int kMaxStalls = 100;  // EINTR/EAGAIN in a row before giving up

}  // namespace

bool send_stats(int fd, const Stats& stats) {
  std::vector<unsigned char> frame;
  put(frame, kFrameMagic);
  put(frame, std::uint32_t{0});  // the length, filled in below
  stats.encode(frame);
  auto length = static_cast<std::uint32_t>(frame.size() - kHeader);
  std::vector<unsigned char> length_bytes;
  put(length_bytes, length);
  std::copy(length_bytes.begin(), length_bytes.end(), frame.begin() + sizeof(std::uint32_t));

  std::size_t done = 0;
  for (int stalls = 0; done < frame.size() && stalls < kMaxStalls;) {
    ssize_t n = write(fd, frame.data() + done, frame.size() - done);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      stalls = 0;
      continue;
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN) return false;  // EPIPE: the parent is gone
    ++stalls;
    if (n < 0 && errno == EAGAIN) {
      pollfd pfd{fd, POLLOUT, 0};
      poll(&pfd, 1, 1000);
    }
  }
  return done == frame.size();
}

void StatsReader::feed(const char* data, std::size_t size) {
  if (bad_) return;
  if (start_ > 0) {  // drop the frames already read
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), data, data + size);
}

bool StatsReader::next(Stats& stats) {
  if (bad_ || buffer_.size() - start_ < kHeader) return false;
  std::size_t pos = start_;
  std::uint32_t magic = 0;
  std::uint32_t length = 0;
  get(buffer_, pos, magic);
  get(buffer_, pos, length);
  if (magic != kFrameMagic || length > kMaxFrame) {
    bad_ = true;
    return false;
  }
  if (buffer_.size() - pos < length) return false;
  std::vector<unsigned char> payload(buffer_.begin() + static_cast<std::ptrdiff_t>(pos),
                                     buffer_.begin() + static_cast<std::ptrdiff_t>(pos + length));
  start_ = pos + length;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  if (!stats.decode(payload)) {
    bad_ = true;
    return false;
  }
  return true;
}

}  // namespace coil_stress
