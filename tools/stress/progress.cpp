// The live progress line.
#include "progress.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "report.hpp"

namespace coil_stress {

namespace {

constexpr std::size_t kErrorNamesShown = 3;

// errors_by_name() sums the errors of every phase per errno name, most frequent first, as
// "ECONNREFUSED 12, ETIMEDOUT 3", the rest as "+N more".
std::string errors_by_name(const Stats& total) {
  std::map<std::string, std::uint64_t> by_name;
  for (const auto& [key, n] : total.errors) by_name[error_name(key.second)] += n;
  std::vector<std::pair<std::string, std::uint64_t>> sorted(by_name.begin(), by_name.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string text;
  for (std::size_t i = 0; i < sorted.size() && i < kErrorNamesShown; ++i)
    text += (i ? ", " : "") + sorted[i].first + " " + std::to_string(sorted[i].second);
  if (sorted.size() > kErrorNamesShown)
    text += ", +" + std::to_string(sorted.size() - kErrorNamesShown) + " more";
  return text;
}

}  // namespace

void ProgressLine::show(const Stats& total, std::uint64_t requested, double elapsed) {
  double dt = elapsed - last_elapsed_;
  double connect_rate = dt > 0
                            ? static_cast<double>(total.established -
                                                  std::min(total.established, last_established_)) /
                                  dt
                            : 0;
  double echo_rate =
      dt > 0 ? static_cast<double>(total.echoed - std::min(total.echoed, last_echoed_)) / dt : 0;
  last_elapsed_ = elapsed;
  last_established_ = total.established;
  last_echoed_ = total.echoed;

  std::string errors = errors_by_name(total);
  char line[512];
  std::snprintf(line, sizeof line,
                "%6.1f s  established %llu/%llu (open %llu)  %.0f conn/s  %.0f msgs/s  "
                "errors %llu%s%s%s  rss %s",
                elapsed, static_cast<unsigned long long>(total.established),
                static_cast<unsigned long long>(requested),
                static_cast<unsigned long long>(total.open), connect_rate, echo_rate,
                static_cast<unsigned long long>(total.error_count()), errors.empty() ? "" : " (",
                errors.c_str(), errors.empty() ? "" : ")", format_bytes(total.rss_bytes).c_str());
  if (tty_) {
    std::fprintf(out_, "\r%s\x1b[K", line);  // ESC[K clears what a longer line left
  } else {
    std::fprintf(out_, "%s\n", line);
  }
  std::fflush(out_);
  shown_ = true;
}

void ProgressLine::finish() {
  if (tty_ && shown_) std::fputc('\n', out_);
  shown_ = false;
  std::fflush(out_);
}

}  // namespace coil_stress
