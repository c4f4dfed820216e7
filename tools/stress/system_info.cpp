// Reads of /proc: stdio's reads are glibc's internal ones, so they are plain calls even inside a
// coroutine (they never wait: procfs answers at once).
#include "system_info.hpp"

#include <unistd.h>

#include <cstdio>
#include <cstring>

namespace coil_stress {

ProcessMemory read_process_memory() {
  ProcessMemory mem;
  std::FILE* f = std::fopen("/proc/self/status", "re");
  if (!f) return mem;
  char line[256];
  unsigned long long kb = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "VmRSS: %llu kB", &kb) == 1) mem.rss_bytes = kb * 1024;
    if (std::sscanf(line, "VmHWM: %llu kB", &kb) == 1) mem.hwm_bytes = kb * 1024;
  }
  std::fclose(f);
  return mem;
}

SocketMemory read_socket_memory() {
  SocketMemory mem;
  std::FILE* f = std::fopen("/proc/net/sockstat", "re");
  if (!f) return mem;
  char line[256];
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "TCP:", 4) != 0) continue;
    // "TCP: inuse 5 orphan 0 tw 4 alloc 6 mem 1"; the fields are read by name.
    char name[32];
    unsigned long long value = 0;
    int used = 0;
    for (const char* p = line + 4; std::sscanf(p, " %31s %llu%n", name, &value, &used) == 2;
         p += used) {
      if (std::strcmp(name, "inuse") == 0) mem.tcp_inuse = value;
      if (std::strcmp(name, "mem") == 0) {
        long page = sysconf(_SC_PAGESIZE);
        mem.tcp_mem_bytes = value * static_cast<unsigned long long>(page > 0 ? page : 4096);
      }
    }
  }
  std::fclose(f);
  return mem;
}

std::uint32_t ephemeral_port_count() {
  std::FILE* f = std::fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");
  if (!f) return 0;
  unsigned lo = 0;
  unsigned hi = 0;
  int fields = std::fscanf(f, "%u %u", &lo, &hi);
  std::fclose(f);
  return fields == 2 && hi >= lo ? hi - lo + 1 : 0;
}

}  // namespace coil_stress
