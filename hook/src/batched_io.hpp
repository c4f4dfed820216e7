// Sends and receives made in the scheduler's batch (coil/detail/batch.hpp): the tries of a
// blocking send or receive on a stream socket coil made non-blocking, queued on io_uring with
// the ones of the other coroutines that run before the scheduler next polls, and made with them
// in one kernel entry. In an echo server woken by epoll for a few hundred connections at once,
// their receives go in one entry and their replies in another.
//
// What makes a batched receive the kernel's: it is non-blocking (MSG_DONTWAIT) like the direct
// try, so EAGAIN, a short count and EOF reach input() as the direct try's would. Only plain
// receives are batched: read() and recv() without flags and without an address.
//
// What makes the batched send the kernel's send:
// - It is non-blocking (MSG_DONTWAIT) like the direct try on the non-blocking socket: its
//   result, EAGAIN included, goes through output() exactly as the direct try's would.
// - io_uring adds MSG_NOSIGNAL to every send, so send_batched() raises the SIGPIPE itself, on
//   the calling thread and with the kernel's siginfo, when the send fails with EPIPE and the
//   caller's flags lack MSG_NOSIGNAL (TCP's sk_stream_error(), unix_stream_sendmsg()).
// - A send the kernel could have made differently is never batched: flags beyond the plain
//   ones (MSG_WAITALL, whose partial count io_uring can lose, MSG_ZEROCOPY, MSG_FASTOPEN), an
//   address, datagram sockets and pipes.
// - A close, dup2 or shutdown made by another coroutine meanwhile makes the batch first.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <cstddef>

#include "coil/detail/batch.hpp"

namespace coil::hook {

// kMaxBatchedLength is the longest send or receive batched: the kernel's own cap on one call
// (MAX_RW_COUNT, INT_MAX rounded down to a page). io_uring takes a 32-bit length, so a longer
// one would be cut: 4 GiB would read as 0, an end of file.
inline constexpr std::size_t kMaxBatchedLength = 0x7ffff000;

// kBatchableFlags are the send flags a batched send may carry.
inline constexpr int kBatchableFlags =
    MSG_NOSIGNAL | MSG_MORE | MSG_EOR | MSG_OOB | MSG_CONFIRM | MSG_DONTROUTE;

// send_batched() is send(fd, buf, len, flags) made in the batch: the count, or -1 with errno.
// detail::kNotBatched when it was not made (the caller makes it): batching cannot pay or be had,
// or flags has more than kBatchableFlags. Precondition: in a coroutine, fd a stream socket coil
// made non-blocking behind a blocking user.
long send_batched(int fd, const void* buf, std::size_t len, int flags);

// sendmsg_batched() is sendmsg(fd, msg, flags) made in the batch, as send_batched().
long sendmsg_batched(int fd, const msghdr* msg, int flags);

// recv_batched() is recv(fd, buf, len, 0) made in the batch: the count (0 at EOF), or -1 with
// errno; detail::kNotBatched when it was not made (the caller makes it). Preconditions as for
// send_batched().
long recv_batched(int fd, void* buf, std::size_t len);

}  // namespace coil::hook
