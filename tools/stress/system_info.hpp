// What the kernel says about this process and its sockets: RSS, socket memory, port ranges.
#pragma once

#include <cstdint>

namespace coil_stress {

// ProcessMemory is this process's resident memory from /proc/self/status.
struct ProcessMemory {
  std::uint64_t rss_bytes = 0;  // VmRSS
  std::uint64_t hwm_bytes = 0;  // VmHWM: the peak of VmRSS
};

// read_process_memory() reads /proc/self/status; zeros if it cannot.
ProcessMemory read_process_memory();

// SocketMemory is the TCP line of /proc/net/sockstat, for the whole system.
struct SocketMemory {
  std::uint64_t tcp_inuse = 0;      // TCP sockets in use
  std::uint64_t tcp_mem_bytes = 0;  // "mem" is in pages: times the page size
};

// read_socket_memory() reads /proc/net/sockstat; zeros if it cannot.
SocketMemory read_socket_memory();

// ephemeral_port_count() is the size of net.ipv4.ip_local_port_range, or 0 if unknown.
std::uint32_t ephemeral_port_count();

}  // namespace coil_stress
