// backtrace_probe: stops in a breakpoint trap three calls deep inside a
// coroutine, for tests/gdb_backtrace.sh to inspect.
#include <coil/scheduler.hpp>

[[gnu::noinline]] void innermost() { asm volatile("int3"); }
[[gnu::noinline]] void middle() {
  innermost();
  asm volatile("");
}

int main() {
  return coil::run([] {
    middle();
    return 0;
  });
}
