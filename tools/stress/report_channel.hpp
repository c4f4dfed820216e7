// The pipe from each client process to the parent: framed Stats, progress and then final.
#pragma once

#include <cstddef>
#include <vector>

#include "stats.hpp"

namespace coil_stress {

// send_stats() writes stats to fd as one frame (magic, length, Stats::encode()). Inside a
// coroutine the write parks while the pipe is full; outside one it waits in poll(2). Returns
// false when the pipe is broken (the parent is gone) or after repeated failures.
bool send_stats(int fd, const Stats& stats);

// StatsReader reassembles frames from the bytes read off one pipe.
class StatsReader {
 public:
  // feed() appends bytes read from the pipe.
  void feed(const char* data, std::size_t size);

  // next() decodes the next complete frame into stats and returns true; false when no complete
  // frame is buffered, or once the stream is malformed (then bad() is true).
  bool next(Stats& stats);

  // bad() is true once a frame was malformed; nothing more is read then.
  bool bad() const { return bad_; }

 private:
  std::vector<unsigned char> buffer_;
  std::size_t start_ = 0;
  bool bad_ = false;
};

}  // namespace coil_stress
