// The stop flag: a counter set from a signal handler and read by the loops that wait.
#include "stop_signal.hpp"

#include <signal.h>

#include <csignal>

namespace coil_stress {

namespace {

volatile std::sig_atomic_t g_stop_requests = 0;

void on_stop_signal(int) {
  if (g_stop_requests < 1000) g_stop_requests = g_stop_requests + 1;
}

}  // namespace

void install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int stop_requests() { return g_stop_requests; }

}  // namespace coil_stress
