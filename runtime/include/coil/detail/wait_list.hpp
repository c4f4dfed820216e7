// WaitList: the one waiting mechanism under coil's sync primitives (Mutex,
// CondVar, Channel, WaitGroup, Semaphore). A waiting coroutine puts a Waiter
// node, which lives on its own stack, at the back of a primitive's WaitList
// and parks; a waker pops the front node, records the outcome in it and wakes
// its coroutine. Nothing is allocated per wait.
//
// The hand-off protocol, which every primitive follows:
// - The waker unlinks the node, sets its state (kSignaled or kClosed) and then
//   calls wake(). The node's state, not park()'s WakeReason or wake()'s result,
//   says what happened: a timeout can fire between the two (the coroutine is
//   already ready with kTimeout and wake() returns false), and the waiter then
//   still sees kSignaled and keeps what it was handed (the lock, the item, the
//   permit). So no wakeup and no item is ever lost.
// - A waiter that times out while still kWaiting unlinks itself.
// - park() throws ForcedUnwind when the scheduler is destroyed. The node's
//   hook is auto_unlink, so its destructor takes it off the list and the list
//   never holds a dangling node; wait_signaled() lets the primitive pass on
//   what was handed to a waiter that is being unwound.
//
// Threads: the waiter and the waker may run on different worker threads. Each
// primitive keeps a SpinLock around its state and its lists; every list
// operation and every read or write of a node's state happens under it. A
// waiter parks with park_unlock(), which releases the lock only once the
// coroutine counts as parked, so a waker that finds the node under the lock
// can always wake it (from any thread); and a waiter that a timeout resumed
// takes the lock before it looks at its node, so a waker holding the lock
// never wakes a coroutine that has moved on to another wait.
#pragma once

#include <boost/intrusive/list.hpp>
#include <cstdint>

#include "coil/detail/park.hpp"
#include "coil/detail/spin_lock.hpp"
#include "coil/time.hpp"

namespace coil::detail {

// WaitState is the outcome a waker records in a Waiter before waking it.
enum class WaitState : std::uint8_t {
  kWaiting,   // still on the list (or timed out and unlinked)
  kSignaled,  // handed what it waited for
  kClosed,    // the primitive was closed (Channel): give up
};

// WaiterHook links a Waiter into a WaitList. auto_unlink: the hook's
// destructor unlinks it, which is what makes forced unwinding safe.
using WaiterHook =
    boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>;

// Waiter is one parked coroutine's node on a WaitList. It lives on that
// coroutine's stack for the duration of the wait. Primitives that hand over a
// value derive from it to add a slot.
struct Waiter : WaiterHook {
  // Waiter() makes a node for coroutine co, not yet linked.
  explicit Waiter(Coroutine* waiting) noexcept : co(waiting) {}
  Waiter(const Waiter&) = delete;
  Waiter& operator=(const Waiter&) = delete;

  Coroutine* co;
  WaitState state = WaitState::kWaiting;
};

// throw_outside_coroutine() throws std::logic_error saying that op may block
// and so needs a coroutine.
[[noreturn]] void throw_outside_coroutine(const char* op);

// coroutine_or_throw() returns the running coroutine, or throws
// std::logic_error naming op outside coroutines.
inline Coroutine* coroutine_or_throw(const char* op) {
  Coroutine* co = current_coroutine();
  if (!co) throw_outside_coroutine(op);
  return co;
}

// deadline_after() turns a timeout into a deadline on the scheduler clock.
// A timeout of zero or less is already due (one non-blocking attempt, as in
// std::timed_mutex); a huge one saturates to kNoDeadline.
inline TimePoint deadline_after(Duration timeout) noexcept {
  TimePoint now = detail::now();
  if (timeout <= Duration::zero()) return now;
  return timeout >= kNoDeadline - now ? kNoDeadline : now + timeout;
}

// WaitList<Node> is a FIFO of waiters (Node derives from Waiter). Why an
// intrusive list: O(1) push, pop and self-unlink of a node that lives on the
// waiter's stack, with no allocation and no index to keep.
template <class Node = Waiter>
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  // ~WaitList() unlinks any nodes left. Precondition: no waiters (they would
  // never be woken).
  ~WaitList() = default;

  // empty() is true when nobody waits.
  bool empty() const noexcept { return list_.empty(); }

  // front() is the longest waiting node. Precondition: !empty().
  Node& front() noexcept { return list_.front(); }

  // enqueue() puts node at the back. Precondition: node is not linked.
  // GCC 12's -Wdangling-pointer sees the address of a local node stored in
  // the list but not the auto_unlink destructor that removes it again.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
  void enqueue(Node& node) noexcept { list_.push_back(node); }
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif

  // wake_front() unlinks the front node, records state in it and wakes its
  // coroutine. Fill in the node's slot (front()) before calling it.
  // Precondition: !empty(), and the caller holds the primitive's lock (the
  // waiter cannot leave its wait meanwhile, so its coroutine stays valid).
  void wake_front(WaitState state = WaitState::kSignaled) noexcept {
    Node& node = list_.front();
    list_.pop_front();
    node.state = state;
    wake(node.co);  // false only if a timeout won the race: the state still tells
  }

  // wake_all() does wake_front(state) until nobody waits.
  void wake_all(WaitState state) noexcept {
    while (!list_.empty()) wake_front(state);
  }

  // wait_signaled() parks the calling coroutine until a waker has recorded
  // an outcome in node (true) or the deadline passes first (false; node is
  // unlinked). Spurious wakeups park again. If park_unlock() throws (forced
  // unwind) after the node was signaled, on_unwind() runs, without the lock,
  // to pass on whatever the node was handed, and the exception propagates.
  // Precondition: the caller holds lock (the primitive's) and enqueue()d node
  // on this list under it. Postcondition: lock is released.
  template <class OnUnwind>
  bool wait_signaled(Node& node, TimePoint deadline, SpinLock& lock, OnUnwind&& on_unwind) {
    for (;;) {
      if (node.state != WaitState::kWaiting) {
        lock.unlock();
        return true;
      }
      WakeReason why;
      try {
        why = park_unlock(deadline, lock);
      } catch (...) {
        lock.lock();
        const bool handed = node.state == WaitState::kSignaled;
        if (node.is_linked()) node.unlink();
        lock.unlock();
        if (handed) on_unwind();
        throw;
      }
      lock.lock();
      if (why == WakeReason::kTimeout && node.state == WaitState::kWaiting) {
        node.unlink();
        lock.unlock();
        return false;
      }
    }
  }

  // wait_signaled() without on_unwind: nothing handed over needs passing on.
  bool wait_signaled(Node& node, TimePoint deadline, SpinLock& lock) {
    return wait_signaled(node, deadline, lock, [] {});
  }

 private:
  // constant_time_size<false>: auto_unlink nodes leave without telling the
  // list, so the list cannot keep a count.
  boost::intrusive::list<Node, boost::intrusive::base_hook<WaiterHook>,
                         boost::intrusive::constant_time_size<false>>
      list_;
};

}  // namespace coil::detail
