// The bytes of a message: unique to its connection and its place in that connection's stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace coil_stress {

// fill_pattern() writes the size bytes message seq of connection conn carries: a xorshift64*
// stream seeded from both numbers. An echo of another connection's message, of an earlier or
// later message, or one shifted by a byte does not match, so --verify catches mixed-up replies
// and not only damaged ones.
inline void fill_pattern(unsigned char* buf, std::size_t size, std::uint64_t conn,
                         std::uint64_t seq) {
  // splitmix64 of the pair gives a well-mixed, non-zero seed.
  std::uint64_t x = conn * 0x9E3779B97F4A7C15ull + (seq + 1) * 0xD1B54A32D192ED03ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  x = (x ^ (x >> 31)) | 1;
  for (std::size_t done = 0; done < size; done += sizeof x) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    std::uint64_t word = x * 0x2545F4914F6CDD1Dull;
    std::size_t n = size - done < sizeof word ? size - done : sizeof word;
    std::memcpy(buf + done, &word, n);
  }
}

}  // namespace coil_stress
