// FdContext: what the hook layer knows about each fd, process-wide.
//
// Why beside the scheduler's FdTable: that table is per scheduler and holds
// readiness; this one is per process, because an fd's nature (socket, pipe,
// file), the O_NONBLOCK its user asked for and its SO_RCVTIMEO/SO_SNDTIMEO
// belong to the fd whichever thread uses it. Entries are atomics in a
// lock-free ChunkedTable: any thread may read them, hooks run before static
// initialisation, and a lookup is two loads.
//
// The central distinction is between the O_NONBLOCK the user set
// (user_nonblock: the hooks then pass EAGAIN through, as the kernel would)
// and the O_NONBLOCK coil set in the kernel to emulate blocking calls on
// epoll (sys_nonblock). A blocking call is emulated exactly when
// sys_nonblock && !user_nonblock.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>

#include "chunked_table.hpp"

namespace coil::hook {

// FdKind is what an fd refers to, as far as waiting on it goes.
enum class FdKind : std::uint8_t {
  kUnknown,   // not looked at yet
  kStream,    // stream socket: a short read means the receive queue is empty
  kMessage,   // datagram, seqpacket or raw socket: every read is one message
  kPipe,      // pipe or FIFO: a short read means the pipe is empty
  kPollable,  // eventfd, timerfd, signalfd, epoll, inotify...: pollable, message-like
  kFile,      // regular file or block device: never EAGAIN, may block on disk
  kBorrowed,  // terminal, other char device, or a stdio pipe: left blocking (it is shared
              // with other processes), waited for with epoll and poll(2)
  kNone,      // not an open fd (fstat failed): calls pass straight to the kernel
};

// FdState is one consistent snapshot of an fd's kind and flags.
struct FdState {
  FdKind kind = FdKind::kUnknown;
  bool user_nonblock = false;  // the user asked for O_NONBLOCK
  bool sys_nonblock = false;   // coil set O_NONBLOCK in the kernel
  // unix_conn: an AF_UNIX SOCK_STREAM or SOCK_SEQPACKET socket, whose writer
  // no event tells of the peer's shutdown(SHUT_RD) (see unix_write_io()).
  bool unix_conn = false;
  // inet: an AF_INET or AF_INET6 socket. With unix_conn, it says which stream sockets have
  // their sends and receives batched (batched_io.hpp): those whose EPIPE raises SIGPIPE.
  bool inet = false;

  // emulates_blocking() is true when a call that meets EAGAIN must wait.
  bool emulates_blocking() const noexcept { return sys_nonblock && !user_nonblock; }
  // drains_on_short_read() is true when a short read proves the fd empty.
  bool drains_on_short_read() const noexcept {
    return kind == FdKind::kStream || kind == FdKind::kPipe;
  }
};

// FileRoute is how reads and writes of a regular file go in
// COIL_FILE_IO=auto, learnt from the first RWF_NOWAIT refusal (file_io.cpp).
enum class FileRoute : std::uint8_t {
  kTryNowait,  // RWF_NOWAIT inline, the pool on a page-cache miss
  kInline,     // a pseudo filesystem (procfs, sysfs...): served from memory
  kPool,       // a filesystem that refuses RWF_NOWAIT and may block: the pool
};

// FileState is what coil knows of one open file description: the kernel
// object that dup(), dup2() and F_DUPFD share between fds. O_NONBLOCK and a
// socket's timeouts belong to it, not to an fd: set O_NONBLOCK through one
// dup and the others are non-blocking too.
class FileState {
 public:
  FdState state() const noexcept { return unpack(bits_.load(std::memory_order_acquire)); }
  void set_state(FdState s) noexcept { bits_.store(pack(s), std::memory_order_release); }
  void set_user_nonblock(bool on) noexcept;

  // Timeouts in nanoseconds; 0 means none (wait forever).
  std::int64_t recv_timeout() const noexcept { return recv_ns_.load(std::memory_order_relaxed); }
  std::int64_t send_timeout() const noexcept { return send_ns_.load(std::memory_order_relaxed); }
  void set_recv_timeout(std::int64_t ns) noexcept { recv_ns_.store(ns, std::memory_order_relaxed); }
  void set_send_timeout(std::int64_t ns) noexcept { send_ns_.store(ns, std::memory_order_relaxed); }

  FileRoute file_route() const noexcept { return route_.load(std::memory_order_relaxed); }
  void set_file_route(FileRoute r) noexcept { route_.store(r, std::memory_order_relaxed); }

  // make() returns a new FileState with one reference; retain() and
  // release() count the fds that share it. Released states are recycled,
  // never freed, so a racing reader of a just-closed fd reads stale values
  // rather than freed memory.
  static FileState* make(FdState s) noexcept;
  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept;
  // unlock_after_fork() frees the recycling list's lock in a fork()ed
  // child, where the thread that may have held it does not exist.
  static void unlock_after_fork() noexcept;

 private:
  static constexpr std::uint32_t kUserNonblockBit = 1u << 8;
  static constexpr std::uint32_t kSysNonblockBit = 1u << 9;
  static constexpr std::uint32_t kUnixConnBit = 1u << 10;
  static constexpr std::uint32_t kInetBit = 1u << 11;

  // pack() and unpack() are inline: every hooked call reads the state.
  static std::uint32_t pack(FdState s) noexcept {
    return static_cast<std::uint32_t>(s.kind) | (s.user_nonblock ? kUserNonblockBit : 0) |
           (s.sys_nonblock ? kSysNonblockBit : 0) | (s.unix_conn ? kUnixConnBit : 0) |
           (s.inet ? kInetBit : 0);
  }
  static FdState unpack(std::uint32_t bits) noexcept {
    FdState s;
    s.kind = static_cast<FdKind>(bits & 0xff);
    s.user_nonblock = (bits & kUserNonblockBit) != 0;
    s.sys_nonblock = (bits & kSysNonblockBit) != 0;
    s.unix_conn = (bits & kUnixConnBit) != 0;
    s.inet = (bits & kInetBit) != 0;
    return s;
  }

  std::atomic<std::uint32_t> bits_{0};
  std::atomic<std::int64_t> recv_ns_{0};
  std::atomic<std::int64_t> send_ns_{0};
  std::atomic<int> refs_{0};
  std::atomic<FileRoute> route_{FileRoute::kTryNowait};
  FileState* next_free_ = nullptr;
};

// FdContext is one fd's slot: the FileState it refers to, if known.
class FdContext {
 public:
  // file() is the fd's FileState, or nullptr if nothing is known.
  FileState* file() const noexcept { return file_.load(std::memory_order_acquire); }
  // file_or_make() returns file(), first making an unclassified one.
  FileState* file_or_make() noexcept;

  FdState state() const noexcept {
    FileState* f = file();
    return f ? f->state() : FdState{};
  }
  std::int64_t recv_timeout() const noexcept {
    FileState* f = file();
    return f ? f->recv_timeout() : 0;
  }
  std::int64_t send_timeout() const noexcept {
    FileState* f = file();
    return f ? f->send_timeout() : 0;
  }

  // attach() makes the fd refer to f (taking over one reference of f) and
  // drops what it referred to before; attach(nullptr) forgets the fd.
  void attach(FileState* f) noexcept;

 private:
  std::atomic<FileState*> file_{nullptr};
};

// fd_contexts is the process-wide table behind find_context() and
// context_for_use(), whose fast paths are inline: every hooked call makes one.
extern detail::ChunkedTable<FdContext> fd_contexts;

// find_context() returns fd's context, or nullptr if none was ever made.
inline FdContext* find_context(int fd) noexcept { return fd_contexts.find(fd); }

// context_slot() returns fd's context, making it (unclassified) if needed;
// nullptr for an fd out of the table's range.
FdContext* context_slot(int fd) noexcept;

// context_for_use() returns fd's context for a call inside a coroutine,
// classifying fd on first use (fstat, F_GETFL, and setting O_NONBLOCK on
// sockets, pipes and pollable fds it may own). nullptr for an fd out of the
// table's range. A classified kNone entry means "not an open fd".
FdContext* context_for_use(int fd) noexcept;

// context_first_use() is context_for_use()'s slow path: an fd not yet
// classified, or without a context.
FdContext* context_first_use(int fd) noexcept;

inline FdContext* context_for_use(int fd) noexcept {
  FdContext* c = fd_contexts.find(fd);
  return c && c->state().kind != FdKind::kUnknown ? c : context_first_use(fd);
}

// note_new_fd() records a fd the hooks just created (socket, accept, pipe,
// eventfd...) and tells the runtime its number was reused.
void note_new_fd(int fd, FdState state) noexcept;

// note_dup_fd() makes `to` share `from`'s FileState (dup, dup2, F_DUPFD).
void note_dup_fd(int from, int to) noexcept;

// note_unknown_fd() forgets what was known of fd: it was made by a call coil
// does not watch (open, or any call outside coroutines), so it is classified
// again on first use in a coroutine.
void note_unknown_fd(int fd) noexcept;

// note_received_fds() forgets what was known of the fd numbers SCM_RIGHTS
// just filled in msg (recvmsg, recvmmsg): they name open files coil has not
// seen (the numbers may carry a closed file's state), to be classified at
// first use.
void note_received_fds(const msghdr& msg) noexcept;

// note_closed_fd() forgets fd before it is closed (or replaced by dup2):
// waiters on this thread's scheduler get EBADF and it leaves epoll.
void note_closed_fd(int fd) noexcept;

}  // namespace coil::hook
