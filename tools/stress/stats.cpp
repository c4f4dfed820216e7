// Stats: error names, merging and the wire form children send to the parent.
#include "stats.hpp"

#include <algorithm>
#include <cstring>

#include "wire.hpp"

namespace coil_stress {

namespace {

constexpr std::uint32_t kStatsVersion = 1;
constexpr std::uint8_t kMaxPhase = static_cast<std::uint8_t>(Phase::kRecv);

}  // namespace

const char* phase_name(Phase phase) {
  switch (phase) {
    case Phase::kDial:
      return "not attempted";
    case Phase::kSpawn:
      return "spawn";
    case Phase::kSocket:
      return "socket";
    case Phase::kBind:
      return "bind";
    case Phase::kConnect:
      return "connect";
    case Phase::kSend:
      return "send";
    case Phase::kRecv:
      return "recv";
  }
  return "?";
}

std::string error_name(int err) {
  if (err == kErrEof) return "EOF";
  if (err == kErrCorrupt) return "corrupt";
  const char* name = strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

std::string error_text(int err) {
  if (err == kErrEof) return "the server closed the connection";
  if (err == kErrCorrupt) return "the echo differs from the message sent";
  return std::strerror(err);
}

std::uint64_t Stats::error_count() const {
  std::uint64_t total = 0;
  for (const auto& [key, n] : errors) total += n;
  return total;
}

void Stats::merge(const Stats& other) {
  requested += other.requested;
  attempted += other.attempted;
  established += other.established;
  open += other.open;
  peak_open += other.peak_open;
  sent += other.sent;
  echoed += other.echoed;
  verified += other.verified;
  corrupt += other.corrupt;
  lost += other.lost;
  steady_echoed += other.steady_echoed;
  connect_phase_ns = std::max(connect_phase_ns, other.connect_phase_ns);
  steady_ns = std::max(steady_ns, other.steady_ns);
  rss_bytes += other.rss_bytes;
  hwm_bytes += other.hwm_bytes;
  tcp_mem_bytes = std::max(tcp_mem_bytes, other.tcp_mem_bytes);
  tcp_inuse = std::max(tcp_inuse, other.tcp_inuse);
  processes += other.processes;
  finished = finished && other.finished;
  interrupted = interrupted || other.interrupted;
  for (const auto& [key, n] : other.errors) errors[key] += n;
  connect_us.merge(other.connect_us);
  rtt_us.merge(other.rtt_us);
}

void Stats::encode(std::vector<unsigned char>& out) const {
  put(out, kStatsVersion);
  for (std::uint64_t v : {requested, attempted, established, open, peak_open, sent, echoed,
                          verified, corrupt, lost, steady_echoed, connect_phase_ns, steady_ns,
                          rss_bytes, hwm_bytes, tcp_mem_bytes, tcp_inuse, processes})
    put(out, v);
  put(out, static_cast<std::uint8_t>(finished));
  put(out, static_cast<std::uint8_t>(interrupted));
  put(out, static_cast<std::uint32_t>(errors.size()));
  for (const auto& [key, n] : errors) {
    put(out, static_cast<std::uint8_t>(key.first));
    put(out, static_cast<std::int32_t>(key.second));
    put(out, n);
  }
  connect_us.encode(out);
  rtt_us.encode(out);
}

bool Stats::decode(const std::vector<unsigned char>& data) {
  std::size_t pos = 0;
  std::uint32_t version = 0;
  if (!get(data, pos, version) || version != kStatsVersion) return false;
  for (std::uint64_t* v :
       {&requested, &attempted, &established, &open, &peak_open, &sent, &echoed, &verified,
        &corrupt, &lost, &steady_echoed, &connect_phase_ns, &steady_ns, &rss_bytes, &hwm_bytes,
        &tcp_mem_bytes, &tcp_inuse, &processes})
    if (!get(data, pos, *v)) return false;
  std::uint8_t flag = 0;
  if (!get(data, pos, flag)) return false;
  finished = flag != 0;
  if (!get(data, pos, flag)) return false;
  interrupted = flag != 0;
  std::uint32_t kinds = 0;
  if (!get(data, pos, kinds)) return false;
  errors.clear();
  for (std::uint32_t i = 0; i < kinds; ++i) {
    std::uint8_t phase = 0;
    std::int32_t err = 0;
    std::uint64_t n = 0;
    if (!get(data, pos, phase) || !get(data, pos, err) || !get(data, pos, n) || phase > kMaxPhase)
      return false;
    errors[{static_cast<Phase>(phase), err}] = n;
  }
  return connect_us.decode(data, pos) && rtt_us.decode(data, pos) && pos == data.size();
}

}  // namespace coil_stress
