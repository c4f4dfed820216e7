// coil::Channel<T>: Go channels for the coroutines of one scheduler.
//
//   coil::Channel<int> ch(16);                 // 0: unbuffered, N: bounded
//   coil::go([&] { for (int i = 0; i < 3; ++i) ch.send(i); ch.close(); });
//   while (auto v = ch.recv()) use(*v);        // nullopt once closed and drained
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>

#include "coil/detail/wait_list.hpp"
#include "coil/time.hpp"

namespace coil {

// ChannelClosed is thrown by a send on a closed channel (also to senders that
// were waiting when it was closed) and by closing a channel twice.
class ChannelClosed : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// RecvStatus is how a non-blocking or timed receive ended.
enum class RecvStatus : std::uint8_t {
  kOk,       // an item was received
  kClosed,   // the channel is closed and drained: no item will ever come
  kTimeout,  // no item before the deadline (for try_recv(): none right now)
};

// RecvResult is the outcome of try_recv() / recv_for() / recv_until().
template <class T>
struct RecvResult {
  RecvStatus status = RecvStatus::kTimeout;
  std::optional<T> value;  // engaged exactly when status == RecvStatus::kOk

  // operator bool() is true when an item was received.
  explicit operator bool() const noexcept { return status == RecvStatus::kOk; }
};

// Channel<T> passes items of type T from senders to receivers in FIFO order,
// with Go's semantics:
// - capacity 0 is a rendezvous: send() returns once a receiver has the item;
//   capacity N buffers up to N items; unbounded() never makes senders wait.
// - Blocked senders, and blocked receivers, are served in FIFO order. A send
//   to a waiting receiver moves the item straight into the receiver's slot,
//   not through the buffer.
// - close(): receivers get the buffered items, then nullopt / kClosed; sends
//   throw ChannelClosed, senders waiting at the time included.
// Blocking calls (send, send_for/until, recv, recv_for/until) need a
// coroutine and throw std::logic_error outside one; try_send, try_recv and
// close work on any thread. Senders and receivers may be coroutines of
// different worker threads. T must be move-constructible; its moves run
// under the channel's spin lock, so they should not block.
template <class T>
class Channel {
 public:
  // kUnbounded is the capacity() of an unbounded channel.
  static constexpr std::size_t kUnbounded = std::numeric_limits<std::size_t>::max();

  // Channel() makes an open channel buffering up to capacity items (0:
  // unbuffered).
  explicit Channel(std::size_t capacity = 0) : capacity_(capacity) {}

  // unbounded() makes a channel whose sends never wait.
  static Channel unbounded() { return Channel(kUnbounded); }

  // ~Channel() destroys it and any buffered items. Precondition: nobody
  // waiting on it.
  ~Channel() = default;
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // send() delivers value to a waiting receiver or the buffer, else parks
  // until a receiver takes it or there is room. Throws ChannelClosed if the
  // channel is or gets closed first, std::logic_error outside a coroutine.
  void send(T value) { (void)send_until_impl(value, kNoDeadline, "Channel::send()"); }

  // try_send() sends value if that needs no waiting and returns true; on
  // false value is left as it was. Throws ChannelClosed if closed.
  bool try_send(T&& value) {
    std::lock_guard guard(lock_);
    return offer(value);
  }

  // try_send(const T&) is try_send() of a copy.
  bool try_send(const T& value) {
    T copy(value);
    std::lock_guard guard(lock_);
    return offer(copy);
  }

  // send_for() is send() giving up after timeout on the scheduler clock:
  // returns false, with value left as it was, if no receiver or room came.
  // Throws like send().
  bool send_for(T&& value, Duration timeout) {
    return send_until_impl(value, detail::deadline_after(timeout), "Channel::send_for()");
  }

  // send_until() is send() giving up at deadline on the scheduler clock:
  // returns false, with value left as it was, if no receiver or room came.
  // Throws like send().
  bool send_until(T&& value, TimePoint deadline) {
    return send_until_impl(value, deadline, "Channel::send_until()");
  }

  // recv() returns the next item, parking until there is one; nullopt once
  // the channel is closed and drained. Throws std::logic_error outside a
  // coroutine.
  std::optional<T> recv() {
    return std::move(recv_until_impl(kNoDeadline, "Channel::recv()").value);
  }

  // try_recv() returns the next item if there is one right now (kOk), else
  // kClosed if the channel is closed and drained, else kTimeout.
  RecvResult<T> try_recv() {
    std::lock_guard guard(lock_);
    if (std::optional<T> item = take()) return {RecvStatus::kOk, std::move(item)};
    return {closed_ ? RecvStatus::kClosed : RecvStatus::kTimeout, std::nullopt};
  }

  // recv_for() is recv() giving up after timeout on the scheduler clock
  // (kTimeout). Throws std::logic_error outside a coroutine.
  RecvResult<T> recv_for(Duration timeout) {
    return recv_until_impl(detail::deadline_after(timeout), "Channel::recv_for()");
  }

  // recv_until() is recv() giving up at deadline on the scheduler clock
  // (kTimeout). Throws std::logic_error outside a coroutine.
  RecvResult<T> recv_until(TimePoint deadline) {
    return recv_until_impl(deadline, "Channel::recv_until()");
  }

  // close() closes the channel: waiting receivers get kClosed (the buffer is
  // empty whenever receivers wait), waiting senders throw ChannelClosed,
  // buffered items stay for later receives. Throws ChannelClosed if already
  // closed.
  void close() {
    std::lock_guard guard(lock_);
    if (closed_) throw ChannelClosed("coil: close of a closed channel");
    closed_ = true;
    receivers_.wake_all(detail::WaitState::kClosed);
    senders_.wake_all(detail::WaitState::kClosed);
  }

  // size() is the number of buffered items.
  std::size_t size() const noexcept {
    std::lock_guard guard(lock_);
    return buffered();
  }

  // capacity() is the buffer's capacity: 0 unbuffered, kUnbounded unbounded.
  std::size_t capacity() const noexcept { return capacity_; }

  // closed() is true once close() was called.
  bool closed() const noexcept {
    std::lock_guard guard(lock_);
    return closed_;
  }

 private:
  // SendWaiter is a parked sender; a receiver moves *value out of it.
  struct SendWaiter : detail::Waiter {
    SendWaiter(detail::Coroutine* waiting, T* item) noexcept : Waiter(waiting), value(item) {}
    T* value;
  };
  // RecvWaiter is a parked receiver; a sender moves its item into it.
  struct RecvWaiter : detail::Waiter {
    using Waiter::Waiter;
    std::optional<T> item;
  };

  // offer() is the half of a send that never waits: it moves value to the
  // longest waiting receiver or into the buffer and returns true, or returns
  // false leaving value alone.
  bool offer(T& value) {
    if (closed_) throw ChannelClosed("coil: send on a closed channel");
    if (!receivers_.empty()) {  // then the buffer is empty: hand over directly
      receivers_.front().item.emplace(std::move(value));
      receivers_.wake_front();
      return true;
    }
    if (buffered() < capacity_) {
      if (!buffer_) buffer_.emplace();
      buffer_->push_back(std::move(value));
      return true;
    }
    return false;
  }

  bool send_until_impl(T& value, TimePoint deadline, const char* op) {
    detail::Coroutine* self = detail::coroutine_or_throw(op);
    std::unique_lock guard(lock_);
    if (offer(value)) return true;
    SendWaiter node(self, &value);
    senders_.enqueue(node);
    guard.release();  // wait_signaled() unlocks it
    if (!senders_.wait_signaled(node, deadline, lock_)) return false;
    if (node.state == detail::WaitState::kClosed) {
      throw ChannelClosed("coil: channel closed while a send waited");
    }
    return true;  // a receiver moved *value out
  }

  // take() is the half of a receive that never waits: the oldest buffered
  // item (refilling the buffer from the longest waiting sender), else the
  // longest waiting sender's item, else nullopt.
  std::optional<T> take() {
    std::optional<T> item;
    if (buffered() != 0) {
      item.emplace(std::move(buffer_->front()));
      buffer_->pop_front();
      if (!senders_.empty()) {
        buffer_->push_back(std::move(*senders_.front().value));
        senders_.wake_front();
      }
    } else if (!senders_.empty()) {  // unbuffered: rendezvous with the sender
      item.emplace(std::move(*senders_.front().value));
      senders_.wake_front();
    }
    return item;
  }

  RecvResult<T> recv_until_impl(TimePoint deadline, const char* op) {
    detail::Coroutine* self = detail::coroutine_or_throw(op);
    std::unique_lock guard(lock_);
    if (std::optional<T> item = take()) return {RecvStatus::kOk, std::move(item)};
    if (closed_) return {RecvStatus::kClosed, std::nullopt};
    // An item handed to this receiver while the scheduler unwinds it is
    // destroyed with the node.
    RecvWaiter node(self);
    receivers_.enqueue(node);
    guard.release();  // wait_signaled() unlocks it
    if (!receivers_.wait_signaled(node, deadline, lock_)) {
      return {RecvStatus::kTimeout, std::nullopt};
    }
    if (node.state == detail::WaitState::kClosed) return {RecvStatus::kClosed, std::nullopt};
    return {RecvStatus::kOk, std::move(node.item)};
  }

  // buffered() is size() for a caller holding lock_.
  std::size_t buffered() const noexcept { return buffer_ ? buffer_->size() : 0; }

  std::size_t capacity_;
  // Around everything below: senders and receivers may run on different
  // worker threads (the protocol is in coil/detail/wait_list.hpp).
  mutable detail::SpinLock lock_;
  bool closed_ = false;
  // Why a deque: items of any T, amortized O(1) at both ends, and memory
  // only for the items actually buffered, which an unbounded channel needs.
  // Made on the first buffered item: libstdc++'s deque allocates ~600 bytes
  // even when empty, which unbuffered channels should not pay.
  std::optional<std::deque<T>> buffer_;     // empty whenever receivers_ is non-empty
  detail::WaitList<SendWaiter> senders_;    // non-empty only when the buffer is full
  detail::WaitList<RecvWaiter> receivers_;  // non-empty only when the buffer is empty
};

}  // namespace coil
