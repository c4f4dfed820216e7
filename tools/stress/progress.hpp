// The live progress line: rewritten in place on a terminal, one plain line a second otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>

#include "stats.hpp"

namespace coil_stress {

// ProgressLine prints the merged snapshots of the client processes. On a terminal it rewrites
// one line in place with '\r' every 500 ms; otherwise (a log, a pipe) it prints a new line about
// every second.
class ProgressLine {
 public:
  ProgressLine(std::FILE* out, bool tty) : out_(out), tty_(tty) {}

  // period() is how often show() should be called.
  std::chrono::milliseconds period() const {
    return tty_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(1000);
  }

  // show() prints total as of elapsed seconds into the run, with rates since the last call:
  // established and requested connections, connects/s, echoes/s, errors by errno name and the
  // summed RSS.
  void show(const Stats& total, std::uint64_t requested, double elapsed);

  // finish() ends the line in place on a terminal, so that what follows starts on a new line.
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool shown_ = false;
  double last_elapsed_ = 0;
  std::uint64_t last_established_ = 0;
  std::uint64_t last_echoed_ = 0;
};

}  // namespace coil_stress
