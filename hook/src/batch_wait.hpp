// The waits of the batch and splice hooks (batch_hooks.cpp,
// splice_hooks.cpp), over wait_ready(). These calls go on after they have
// moved part of their work, and when the real call stopped short it does
// not say why.
#pragma once

#include <poll.h>

#include <cerrno>

#include "io.hpp"
#include "real.hpp"

namespace coil::hook {

// events_now() asks poll(2), without waiting, which of `events` fd has now;
// POLLERR, POLLHUP and POLLNVAL come unasked. 0 if poll fails.
inline short events_now(int fd, short events) noexcept {
  pollfd p{fd, events, 0};
  return real::poll(&p, 1, 0) > 0 ? p.revents : 0;
}

// wait_for() waits for fd, which a call or poll(2) just found not ready for
// dir (so in a coroutine it marks it so first); once the call has moved
// something, any caught signal ends the wait.
inline bool wait_for(int fd, Dir dir, Deadline& deadline, bool moved) {
  if (in_coroutine()) detail::mark_not_ready(fd, interest(dir));
  return wait_ready(fd, dir, deadline, moved);
}

// Stop is why a socket took less than a real call offered (sendmmsg, splice
// into a socket) when the call does not say: the kernel drops the error that
// ended a batch after its first message (sendmmsg(2)).
enum class Stop {
  kFull,   // no room: the blocking call waits
  kRoom,   // room again: try at once
  kError,  // an error: the blocking call returns the count
};

// why_stopped() asks poll(2): no room means EAGAIN. With room, a stream
// socket made room meanwhile (its errors last and show as POLLERR or
// POLLHUP); a datagram socket met an error the kernel took and dropped (an
// ICMP error on connected UDP), which a retry would not meet.
inline Stop why_stopped(int fd, bool stream) noexcept {
  short ready = events_now(fd, POLLOUT);
  if (ready & (POLLERR | POLLHUP | POLLNVAL)) return Stop::kError;
  if (!(ready & POLLOUT)) return Stop::kFull;
  return stream ? Stop::kRoom : Stop::kError;
}

}  // namespace coil::hook
