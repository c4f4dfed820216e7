// Wire helpers: fixed-size values appended to and read from a byte buffer (same host only).
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace coil_stress {

// put() appends the bytes of a trivially copyable value. The reader is a process forked from
// the same binary on the same host, so native byte order and layout are what both sides use.
template <class T>
void put(std::vector<unsigned char>& out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  // resize() and memcpy, not insert(): GCC 12 at -O3 warns falsely (-Wstringop-overflow) on
  // insert() of a range into a vector that inlining sees freshly allocated.
  const std::size_t at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &value, sizeof(T));
}

// get() reads a value at pos and advances pos; false (value untouched) if the data ends first.
template <class T>
bool get(const std::vector<unsigned char>& in, std::size_t& pos, T& value) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (pos > in.size() || in.size() - pos < sizeof(T)) return false;
  std::memcpy(&value, in.data() + pos, sizeof(T));
  pos += sizeof(T);
  return true;
}

}  // namespace coil_stress
