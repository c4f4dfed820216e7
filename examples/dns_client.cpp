// dns_client: resolves many names over UDP at once, one coroutine per query, in blocking style.
//
//   dns_client [--server 127.0.0.1:53] [--timeout-ms 500] [--retries 2] [--concurrency 64]
//              [--type A|AAAA] NAME... [--file names.txt]
//
// The seeds' asynchronous DNS client (HERITAGE.md section 7) needed an epoll thread and nested
// callbacks. Here each query is a coroutine that does what a synchronous resolver does: socket,
// connect, send, poll with the time left, recv, retry. coil's hooks turn every one of those
// calls into a wait on the scheduler's epoll, so --concurrency queries are in flight at once.
// Responses must carry one of the ids sent for the query and repeat its question; anything else
// is a stray packet and is ignored. Every read of a response is bounds-checked: a malformed
// packet is reported as an error. Prints one line per name, in input order, then a summary.
// Exit status: 0 if every name resolved, 1 if any failed, 2 on bad usage.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "coil/scheduler.hpp"
#include "coil/semaphore.hpp"
#include "coil/wait_group.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kClassIn = 1;
constexpr std::size_t kMaxNameText = 253;  // characters, without the trailing dot
constexpr std::size_t kMaxNameWire = 255;  // bytes on the wire, length bytes included
constexpr std::size_t kMaxLabel = 63;
constexpr int kMaxPointers = 64;  // compression pointers followed in one name
constexpr int kMaxCnameHops = 8;  // CNAMEs followed from the question's name
constexpr std::size_t kBufSize = 4096;

// Config is what every query needs, from the command line.
struct Config {
  sockaddr_in server{};
  std::chrono::milliseconds timeout{500};
  int tries = 3;
  std::uint16_t qtype = kTypeA;
};

// Result is one output line after the name: "A 10.0.0.1 ..." or "error: ...".
struct Result {
  bool ok = false;
  std::string text;
};

Result fail(const std::string& why) { return {false, "error: " + why}; }

Result fail_errno(const char* call) {
  return fail(std::string(call) + ": " + std::strerror(errno));
}

const char* type_name(std::uint16_t type) { return type == kTypeAaaa ? "AAAA" : "A"; }

bool iequal(std::string_view a, std::string_view b) {
  auto lower = [](char c) { return std::tolower(static_cast<unsigned char>(c)); };
  return std::ranges::equal(a, b, [&](char x, char y) { return lower(x) == lower(y); });
}

// parse_server() reads an IPv4 "ADDRESS[:PORT]" (port 53 by default).
bool parse_server(const std::string& text, sockaddr_in* out) {
  std::size_t colon = text.rfind(':');
  std::string host = text.substr(0, colon);
  long port = 53;
  if (colon != std::string::npos) {
    std::string digits = text.substr(colon + 1);
    if (digits.empty() || digits.size() > 5 ||
        !std::ranges::all_of(digits, [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    port = std::stol(digits);
  }
  *out = sockaddr_in{};
  out->sin_family = AF_INET;
  out->sin_port = htons(static_cast<std::uint16_t>(port));
  return port >= 1 && port <= 65535 && inet_pton(AF_INET, host.c_str(), &out->sin_addr) == 1;
}

// encode_name() appends name in wire form to out; returns why it is invalid, or "".
std::string encode_name(std::string_view name, Bytes& out) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty()) return "empty name";
  if (name.size() > kMaxNameText) return "name longer than 253 characters";
  for (std::size_t start = 0; start <= name.size();) {
    std::size_t dot = std::min(name.find('.', start), name.size());
    std::string_view label = name.substr(start, dot - start);
    if (label.empty()) return "empty label";
    if (label.size() > kMaxLabel) return "label longer than 63 characters";
    if (!std::ranges::all_of(label, [](char c) { return c > ' ' && c < 127 && c != '\\'; })) {
      return "character not allowed";
    }
    out.push_back(static_cast<std::uint8_t>(label.size()));
    out.insert(out.end(), label.begin(), label.end());
    start = dot + 1;
  }
  out.push_back(0);
  return {};
}

void put16(Bytes& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

// Query is one name's question and the ids its attempts were sent with.
struct Query {
  std::string name;  // as checked against responses: no trailing dot
  Bytes wire_name;
  std::uint16_t qtype = kTypeA;
  std::vector<std::uint16_t> ids;

  // packet() is the query for the latest id: recursion desired, one question.
  Bytes packet() const {
    Bytes b;
    for (unsigned field : {unsigned{ids.back()}, 0x0100u, 1u, 0u, 0u, 0u}) put16(b, field);
    b.insert(b.end(), wire_name.begin(), wire_name.end());
    put16(b, qtype);
    put16(b, kClassIn);
    return b;
  }
};

// Malformed is thrown by Reader when a response breaks the format.
class Malformed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reader reads a DNS message; every read is bounds-checked and throws Malformed past the end.
class Reader {
 public:
  Reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t offset() const { return pos_; }
  void need(std::size_t n) const { need_at(pos_, n); }
  void skip(std::size_t n) {
    need(n);
    pos_ += n;
  }
  std::uint16_t u16() {
    need(2);
    pos_ += 2;
    return static_cast<std::uint16_t>(data_[pos_ - 2] << 8 | data_[pos_ - 1]);
  }
  const std::uint8_t* bytes(std::size_t n) {
    skip(n);
    return data_ + pos_ - n;
  }

  // name() reads a possibly compressed name and moves past it. A pointer must point before
  // itself, at most kMaxPointers are followed and the name must fit in 255 bytes, so a loop of
  // pointers ends in Malformed. Bytes that would not print are written as \DDD.
  std::string name() {
    std::string out;
    std::size_t at = pos_, wire = 1;
    int pointers = 0;
    for (std::uint8_t len = byte_at(at); len != 0; len = byte_at(at)) {
      if ((len & 0xC0) == 0xC0) {
        std::size_t target = static_cast<std::size_t>(len & 0x3F) << 8 | byte_at(at + 1);
        if (target >= at || ++pointers > kMaxPointers) throw Malformed("compression pointer loop");
        if (pointers == 1) pos_ = at + 2;
        at = target;
        continue;
      }
      if ((len & 0xC0) != 0) throw Malformed("unknown label type");
      need_at(at + 1, len);
      if ((wire += len + 1u) > kMaxNameWire) throw Malformed("name longer than 255 bytes");
      if (!out.empty()) out += '.';
      for (std::size_t i = at + 1; i <= at + len; ++i) append_printable(out, data_[i]);
      at += 1 + len;
    }
    if (pointers == 0) pos_ = at + 1;
    return out;
  }

 private:
  void need_at(std::size_t at, std::size_t n) const {
    if (at > size_ || n > size_ - at) throw Malformed("truncated packet");
  }
  std::uint8_t byte_at(std::size_t at) const {
    need_at(at, 1);
    return data_[at];
  }
  static void append_printable(std::string& out, std::uint8_t c) {
    if (c > ' ' && c < 127 && c != '.' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\%03u", c);
      out += escaped;
    }
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// Record is an answer record coil understands: an address as text or a CNAME's target.
struct Record {
  std::string owner;
  std::uint16_t type = 0;
  std::string data;
};

// read_rdata() reads the data of an IN record of len bytes, or skips a type we do not use.
std::optional<std::string> read_rdata(Reader& r, std::uint16_t type, std::size_t len) {
  std::size_t end = r.offset() + len;
  if (type == kTypeA || type == kTypeAaaa) {
    std::size_t size = type == kTypeA ? 4 : 16;
    if (len != size) {
      throw Malformed(std::string(type_name(type)) + " record of " + std::to_string(len) +
                      " bytes");
    }
    char text[INET6_ADDRSTRLEN];
    inet_ntop(type == kTypeA ? AF_INET : AF_INET6, r.bytes(len), text, sizeof text);
    return text;
  }
  if (type == kTypeCname) {
    r.need(len);
    std::string target = r.name();
    if (r.offset() != end) throw Malformed("CNAME data does not match its length");
    return target;
  }
  r.skip(len);
  return std::nullopt;
}

std::vector<Record> read_answers(Reader& r, unsigned count) {
  std::vector<Record> records;
  for (unsigned i = 0; i < count; ++i) {
    Record rec;
    rec.owner = r.name();
    rec.type = r.u16();
    std::uint16_t rclass = r.u16();
    r.skip(4);  // TTL
    std::size_t len = r.u16();
    if (rclass != kClassIn) {
      r.skip(len);
    } else if (std::optional<std::string> data = read_rdata(r, rec.type, len)) {
      rec.data = std::move(*data);
      records.push_back(std::move(rec));
    }
  }
  return records;
}

// answer_text() follows CNAMEs from the question's name and lists the addresses at the end.
Result answer_text(const std::vector<Record>& records, const Query& q) {
  auto of = [&](std::string_view owner, std::uint16_t type) {
    return
        [owner, type](const Record& rec) { return rec.type == type && iequal(rec.owner, owner); };
  };
  std::string text, owner = q.name;
  for (int hops = 0;; ++hops) {
    auto cname = std::ranges::find_if(records, of(owner, kTypeCname));
    if (cname == records.end()) break;
    if (hops == kMaxCnameHops) return fail("CNAME chain longer than 8");
    text += "CNAME " + cname->data + " ";
    owner = cname->data;
  }
  text += type_name(q.qtype);
  std::size_t bare = text.size();
  for (const Record& rec : records) {
    if (of(owner, q.qtype)(rec)) text += " " + rec.data;
  }
  if (text.size() == bare) return fail(std::string("no ") + type_name(q.qtype) + " record");
  return {true, text};
}

std::string rcode_name(unsigned rcode) {
  static const char* const kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                       "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                       "NXRRSET", "NOTAUTH", "NOTZONE"};
  return rcode < std::size(kNames) ? kNames[rcode] : "RCODE " + std::to_string(rcode);
}

// interpret() returns the result a response gives q, or nullopt for a packet that is not an
// answer to q (too short, not a response, another id or another question).
std::optional<Result> interpret(const std::uint8_t* data, std::size_t size, const Query& q) {
  if (size < 12) return std::nullopt;
  Reader r(data, size);
  std::uint16_t id = r.u16(), flags = r.u16(), questions = r.u16(), answers = r.u16();
  r.skip(4);
  if ((flags & 0x8000) == 0 || std::ranges::find(q.ids, id) == q.ids.end()) return std::nullopt;
  try {
    if (questions != 1 || !iequal(r.name(), q.name) || r.u16() != q.qtype || r.u16() != kClassIn) {
      return std::nullopt;
    }
    if ((flags & 0x0200) != 0) return fail("truncated response (TC set)");
    if (unsigned rcode = flags & 0xF; rcode != 0) return fail(rcode_name(rcode));
    return answer_text(read_answers(r, answers), q);
  } catch (const Malformed& e) {
    return fail(std::string("malformed response: ") + e.what());
  }
}

int ms_until(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<decltype(left)>(left, 0, 1 << 30));
}

// await_answer() reads datagrams until one answers q (its result) or the deadline passes
// (nullopt, with *failure saying how the attempt ended).
std::optional<Result> await_answer(int fd, const Query& q, Clock::time_point deadline,
                                   std::string* failure) {
  std::uint8_t buf[kBufSize];
  *failure = "timeout";
  for (int ms = ms_until(deadline); ms > 0; ms = ms_until(deadline)) {
    pollfd pfd{fd, POLLIN, 0};
    int ready = poll(&pfd, 1, ms);  // a coroutine parks here; the thread runs the others
    if (ready < 0 && errno != EINTR) return fail_errno("poll");
    if (ready <= 0) continue;
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == ECONNREFUSED) {  // ICMP port unreachable on a connected socket
      *failure = "connection refused";
      return std::nullopt;
    }
    if (n < 0 && errno != EINTR && errno != EAGAIN) return fail_errno("recv");
    if (n < 0) continue;
    if (std::optional<Result> result = interpret(buf, static_cast<std::size_t>(n), q)) {
      return result;
    }
  }
  return std::nullopt;
}

// exchange() sends q up to cfg.tries times, each with a new id and cfg.timeout to answer. A
// late answer to an earlier attempt counts as well.
Result exchange(int fd, Query& q, const Config& cfg, std::mt19937& rng) {
  std::string failure;
  for (int attempt = 0; attempt < cfg.tries; ++attempt) {
    q.ids.push_back(static_cast<std::uint16_t>(rng()));
    Bytes packet = q.packet();
    if (send(fd, packet.data(), packet.size(), 0) < 0) {
      if (errno != ECONNREFUSED) return fail_errno("send");
      failure = "connection refused";  // reported by an earlier attempt's ICMP
      continue;
    }
    if (std::optional<Result> result = await_answer(fd, q, Clock::now() + cfg.timeout, &failure)) {
      return *result;
    }
  }
  return fail(failure + " after " + std::to_string(cfg.tries) +
              (cfg.tries == 1 ? " try" : " tries"));
}

// resolve() looks name up with its own connected UDP socket, so the kernel drops datagrams
// from any other address.
Result resolve(const std::string& name, const Config& cfg, std::mt19937& rng) {
  Query q{.name = name, .qtype = cfg.qtype};
  if (std::string why = encode_name(name, q.wire_name); !why.empty()) {
    return fail("invalid name: " + why);
  }
  if (q.name.ends_with('.')) q.name.pop_back();
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail_errno("socket");
  Result result;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&cfg.server), sizeof cfg.server) != 0) {
    result = fail_errno("connect");
  } else {
    result = exchange(fd, q, cfg, rng);
  }
  close(fd);
  return result;
}

// resolve_all() resolves names on a coil scheduler: one coroutine per name, at most
// concurrency of them alive at a time.
std::vector<Result> resolve_all(const std::vector<std::string>& names, const Config& cfg,
                                int concurrency) {
  std::vector<Result> results(names.size());
  coil::run([&] {
    std::mt19937 rng(std::random_device{}());
    coil::Semaphore slots(concurrency);
    coil::WaitGroup running;
    for (std::size_t i = 0; i < names.size(); ++i) {
      slots.acquire();  // spawn the next query once one has finished
      running.add(1);
      coil::go([&, i] {
        results[i] = resolve(names[i], cfg, rng);
        slots.release();
        running.done();
      });
    }
    running.wait();
  });
  return results;
}

// read_names() appends the names in path, one per line; blank lines and # comments are skipped.
bool read_names(const std::string& path, std::vector<std::string>* names) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#') continue;
    names->push_back(line.substr(first, line.find_last_not_of(" \t\r") + 1 - first));
  }
  return !in.bad() && in.eof();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"dns_client: resolves names over UDP concurrently, one coroutine per query"};
  std::string server = "127.0.0.1:53", type = "A", file;
  int timeout_ms = 500, retries = 2, concurrency = 64;
  std::vector<std::string> names;
  app.add_option("--server", server, "DNS server, IPv4 ADDRESS[:PORT]")
      ->check([](const std::string& text) {
        sockaddr_in addr;
        return parse_server(text, &addr) ? std::string() : "not an IPv4 ADDRESS[:PORT]";
      });
  app.add_option("--timeout-ms", timeout_ms, "Time to wait for each answer")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--retries", retries, "Queries resent after a timeout")->check(CLI::Range(0, 100));
  app.add_option("--concurrency", concurrency, "Queries in flight at most")
      ->check(CLI::Range(1, 100000));
  app.add_option("--type", type, "Record type")->check(CLI::IsMember({"A", "AAAA"}));
  app.add_option("--file", file, "File of names, one per line")->check(CLI::ExistingFile);
  app.add_option("names", names, "Names to resolve");
  try {
    app.parse(argc, argv);
    if (!file.empty() && !read_names(file, &names))
      throw CLI::ValidationError("cannot read " + file);
    if (names.empty()) throw CLI::ValidationError("no names given (NAME... or --file)");
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  Config cfg;
  parse_server(server, &cfg.server);
  cfg.timeout = std::chrono::milliseconds(timeout_ms);
  cfg.tries = retries + 1;
  cfg.qtype = type == "AAAA" ? kTypeAaaa : kTypeA;
  auto start = Clock::now();
  std::vector<Result> results = resolve_all(names, cfg, concurrency);
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();

  std::size_t ok = 0;
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::printf("%s %s\n", names[i].c_str(), results[i].text.c_str());
    ok += results[i].ok;
  }
  std::printf("total: %zu names in %.1f ms, %zu ok, %zu failed\n", names.size(), ms, ok,
              names.size() - ok);
  return ok == names.size() ? 0 : 1;
}
