// What a coroutine runs and where its result goes. A Body lives at the top of
// the coroutine's own stack, next to its control block, so a spawn makes no
// heap allocation.
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace coil::detail {

// BodyBase is the type-erased part the scheduler sees.
class BodyBase {
 public:
  // invoke() runs the function once and stores its value. Exceptions leave
  // it; the scheduler stores them in error.
  virtual void invoke() = 0;
  // release_function() destroys the function object (and its captures) as
  // soon as it has run, long before the result is joined.
  virtual void release_function() noexcept = 0;
  virtual ~BodyBase() = default;

  std::exception_ptr error;
};

// ResultBody<R> holds the value a coroutine returns.
template <class R>
class ResultBody : public BodyBase {
 public:
  std::optional<R> value;
};

template <>
class ResultBody<void> : public BodyBase {};

// Body<F, R> binds a function object F returning R.
template <class F, class R>
class Body final : public ResultBody<R> {
 public:
  template <class G>
  explicit Body(G&& fn) : fn_(std::in_place, std::forward<G>(fn)) {}

  void invoke() override {
    if constexpr (std::is_void_v<R>) {
      (*fn_)();
    } else {
      this->value.emplace((*fn_)());
    }
  }
  void release_function() noexcept override { fn_.reset(); }

 private:
  std::optional<F> fn_;
};

}  // namespace coil::detail
