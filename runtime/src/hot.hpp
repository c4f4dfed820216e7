// COIL_HOT marks the functions that run for every message of an I/O-bound
// server: a hooked read or write, its wait, the park and switch, the poller's
// dispatch. GCC puts hot functions together in .text.hot, so that path spans
// two pages of code instead of nine spread over libcoil's .text.
//
// Why pages matter: on a kernel with page-table isolation and no PCID (the
// paravirtualised guests measured in docs/bench_echo_http.md), every system
// call flushes the TLB, so each distinct page a coroutine touches between
// two system calls costs a page walk. An echo message makes two calls.
#pragma once

#define COIL_HOT __attribute__((hot))
