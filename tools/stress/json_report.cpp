// The report as JSON (--json FILE): the same figures as the text, for scripts.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "json_writer.hpp"
#include "report.hpp"

namespace coil_stress {

namespace {

constexpr double kQuantiles[] = {0.5, 0.9, 0.99, 0.999};
constexpr const char* kQuantileNames[] = {"p50", "p90", "p99", "p99.9"};

using u64 = std::uint64_t;

// latency() writes a histogram's count and percentiles, in microseconds.
void latency(JsonWriter& json, const char* name, const LatencyHistogram& h) {
  json.key(name);
  json.begin_object();
  json.member("count", u64{h.count()});
  json.member("min", u64{h.min()});
  json.member("mean", h.mean());
  for (std::size_t i = 0; i < std::size(kQuantiles); ++i)
    json.member(kQuantileNames[i], u64{h.percentile(kQuantiles[i])});
  json.member("max", u64{h.max()});
  json.end_object();
}

void strings(JsonWriter& json, const char* name, const std::vector<std::string>& list) {
  json.key(name);
  json.begin_array();
  for (const std::string& text : list) json.value(text);
  json.end_array();
}

std::string render(const Summary& s) {
  const Options& o = *s.opts;
  const Stats& t = s.run->total;
  JsonWriter json;
  json.begin_object();
  json.member("ok", s.ok());
  json.key("options");
  json.begin_object();
  json.member("host", o.host);
  json.member("ports", o.ports);
  json.member("connections", u64{o.connections});
  json.member("src", o.src);
  json.member("rate", o.rate);
  json.member("duration_s", o.duration);
  json.member("message_size", u64{o.message_size});
  json.member("interval_s", o.interval);
  json.member("verify", o.verify);
  json.member("procs", o.procs);
  json.member("threads", o.threads);
  json.member("connect_timeout_s", o.connect_timeout);
  json.member("echo_timeout_s", o.echo_timeout);
  json.member("max_pending", u64{o.max_pending});
  json.end_object();

  json.key("connections");
  json.begin_object();
  json.member("requested", u64{o.connections});
  json.member("attempted", u64{t.attempted});
  json.member("established", u64{t.established});
  json.member("peak_open", u64{t.peak_open});
  json.member("failed", u64{t.error_count()});
  json.member("connect_phase_s", s.connect_seconds);
  json.member("connects_per_s", s.connect_rate);
  json.end_object();
  latency(json, "connect_latency_us", t.connect_us);

  json.key("messages");
  json.begin_object();
  json.member("sent", u64{t.sent});
  json.member("echoed", u64{t.echoed});
  json.member("verified", u64{t.verified});
  json.member("lost", u64{t.lost});
  json.member("corrupt", u64{t.corrupt});
  json.member("steady_window_s", s.steady_seconds);
  json.member("steady_echoed", u64{t.steady_echoed});
  json.member("echoes_per_s", s.echo_rate);
  json.end_object();
  latency(json, "rtt_us", t.rtt_us);

  json.member("errors_total", u64{t.error_count()});
  json.key("errors");
  json.begin_array();
  for (const auto& [key, n] : t.errors) {
    json.begin_object();
    json.member("phase", phase_name(key.first));
    json.member("error", error_name(key.second));
    json.member("message", error_text(key.second));
    json.member("count", u64{n});
    json.end_object();
  }
  json.end_array();

  json.key("memory");
  json.begin_object();
  json.member("client_rss_bytes", u64{t.rss_bytes});
  json.member("client_peak_rss_bytes", u64{t.hwm_bytes});
  json.member("client_rss_per_connection_bytes",
              u64{t.established > 0 ? t.rss_bytes / t.established : 0});
  json.member("kernel_tcp_mem_bytes", u64{t.tcp_mem_bytes});
  json.member("kernel_tcp_sockets_in_use", u64{t.tcp_inuse});
  json.end_object();

  json.member("processes", u64{t.processes});
  json.member("interrupted", s.run->interrupted);
  json.member("wall_s", s.run->wall_seconds);
  strings(json, "hints", s.hints);
  strings(json, "problems", s.problems);
  json.end_object();
  return json.text();
}

}  // namespace

bool write_json_report(const std::string& path, const Summary& summary, std::string& why) {
  std::string text = render(summary);
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    why = std::strerror(errno);
    return false;
  }
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0) ok = false;
  if (!ok) why = std::strerror(errno);
  return ok;
}

}  // namespace coil_stress
