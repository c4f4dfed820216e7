// dns_responder: a tiny authoritative DNS server on 127.0.0.1 for the dns_client smoke test.
//
//   dns_responder --port 0 [--drop-first N] [--delay-ms D] [--garbage NAME]... [--stray]
//                 [--max-seconds S]
//
// Plain blocking POSIX on one thread, no coil. It prints "listening on port N" first. Zone:
//   hostK.test (K = 0..65535)  A 10.0.K/256.K%256, AAAA fd00::K
//   alias.test                 CNAME host1.test, plus host1.test's address
//   servfail.test              SERVFAIL
//   silent.test                never answered
//   test                       no records (NOERROR, no answers)
//   other names under .test    NXDOMAIN; names elsewhere: REFUSED
// --drop-first N ignores the first N queries for each name; --delay-ms D sends every answer D ms
// late (answers wait in a queue, so queries are not serialised); each --garbage NAME gets a
// malformed answer, the i-th one variant i % 4 (pointer loop, cut record, bad A length, bad label
// type); --stray sends two NXDOMAIN packets (other id; right id, other question) before every
// answer. Exits on SIGTERM/SIGINT or after --max-seconds (default 60).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<std::uint8_t>;

volatile sig_atomic_t g_stop = 0;

struct Options {
  long port = 0;
  long drop_first = 0;
  long delay_ms = 0;
  long max_seconds = 60;
  bool stray = false;
  std::vector<std::string> garbage;
};

// Query is the part of a request the answer needs.
struct Query {
  std::uint16_t id = 0;
  std::uint16_t flags = 0;
  std::string name;  // lower-case, no trailing dot
  std::uint16_t type = 0;
  Bytes question;  // the question section as received
};

// Reply is an answer waiting for its send time.
struct Reply {
  Clock::time_point due;
  sockaddr_in to;
  Bytes packet;
};

constexpr std::uint16_t kTypeA = 1;
constexpr std::uint16_t kTypeCname = 5;
constexpr std::uint16_t kTypeAaaa = 28;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kQuestionName = 12;  // offset of the question's name in every packet

void put16(Bytes& b, unsigned v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

unsigned get16(const std::uint8_t* p) { return static_cast<unsigned>(p[0] << 8 | p[1]); }

// parse_query() reads a standard query with one question, or returns nullopt.
std::optional<Query> parse_query(const std::uint8_t* p, std::size_t len) {
  if (len < 12 || (p[2] & 0x80) != 0 || get16(p + 4) != 1) return std::nullopt;
  Query q;
  q.id = static_cast<std::uint16_t>(get16(p));
  q.flags = static_cast<std::uint16_t>(get16(p + 2));
  std::size_t at = 12;
  while (at < len && p[at] != 0) {
    std::size_t n = p[at];
    if (n > 63 || at + 1 + n >= len) return std::nullopt;
    if (!q.name.empty()) q.name += '.';
    for (std::size_t i = 0; i < n; ++i) {
      q.name += static_cast<char>(std::tolower(p[at + 1 + i]));
    }
    at += 1 + n;
  }
  if (at + 5 > len) return std::nullopt;
  q.type = static_cast<std::uint16_t>(get16(p + at + 1));
  q.question.assign(p + 12, p + at + 5);
  return q;
}

// host_number() returns K for "hostK.test" (K in 0..65535, no leading zeros), else -1.
long host_number(const std::string& name) {
  const std::string prefix = "host", suffix = ".test";
  if (name.size() <= prefix.size() + suffix.size() || name.compare(0, 4, prefix) != 0 ||
      name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return -1;
  }
  std::string digits = name.substr(4, name.size() - 4 - suffix.size());
  if (digits.size() > 5 || (digits.size() > 1 && digits[0] == '0')) return -1;
  long k = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    k = k * 10 + (c - '0');
  }
  return k <= 65535 ? k : -1;
}

Bytes header(const Query& q, unsigned rcode, unsigned answers) {
  Bytes b;
  put16(b, q.id);
  put16(b, 0x8400u | (q.flags & 0x0100u) | rcode);  // QR, AA, RD copied
  put16(b, 1);
  put16(b, answers);
  put16(b, 0);
  put16(b, 0);
  b.insert(b.end(), q.question.begin(), q.question.end());
  return b;
}

// add_record() appends a record whose owner is the name at owner_offset.
void add_record(Bytes& b, unsigned owner_offset, unsigned type, const Bytes& rdata) {
  put16(b, 0xC000u | owner_offset);
  put16(b, type);
  put16(b, kClassIn);
  put16(b, 0);
  put16(b, 300);  // TTL
  put16(b, static_cast<unsigned>(rdata.size()));
  b.insert(b.end(), rdata.begin(), rdata.end());
}

Bytes address_of(long k, std::uint16_t type) {
  auto hi = static_cast<std::uint8_t>(k >> 8), lo = static_cast<std::uint8_t>(k);
  if (type == kTypeA) return {10, 0, hi, lo};
  Bytes v6(16, 0);
  v6[0] = 0xfd;
  v6[14] = hi;
  v6[15] = lo;
  return v6;
}

// answer() builds the response to q from the zone above.
Bytes answer(const Query& q) {
  bool address = q.type == kTypeA || q.type == kTypeAaaa;
  if (long k = host_number(q.name); k >= 0) {
    Bytes b = header(q, 0, address ? 1 : 0);
    if (address) add_record(b, kQuestionName, q.type, address_of(k, q.type));
    return b;
  }
  if (q.name == "alias.test") {
    Bytes b = header(q, 0, address ? 2 : 1);
    // "host1" then a pointer to "test" inside the question's "alias.test".
    Bytes target = {5, 'h', 'o', 's', 't', '1', 0xC0, kQuestionName + 6};
    unsigned target_offset = static_cast<unsigned>(b.size()) + 12;  // after owner..rdlength
    add_record(b, kQuestionName, kTypeCname, target);
    if (address) add_record(b, target_offset, q.type, address_of(1, q.type));
    return b;
  }
  if (q.name == "test") return header(q, 0, 0);  // the zone's apex: no addresses
  if (q.name == "servfail.test") return header(q, 2, 0);
  return header(q, q.name.ends_with(".test") ? 3 : 5, 0);
}

// garbage() builds malformed answer number variant for q.
Bytes garbage(const Query& q, std::size_t variant) {
  Bytes b = header(q, 0, 1);
  switch (variant % 4) {
    case 0: {  // the owner name is a pointer to itself
      auto self = static_cast<unsigned>(b.size());
      put16(b, 0xC000u | self);
      put16(b, kTypeA);
      put16(b, kClassIn);
      put16(b, 0);
      put16(b, 300);
      put16(b, 4);
      b.insert(b.end(), {10, 9, 9, 9});
      break;
    }
    case 1:  // the record is cut inside its rdata
      add_record(b, kQuestionName, kTypeA, {10, 9, 9, 9});
      b.resize(b.size() - 2);
      break;
    case 2:  // an A record of 3 bytes
      add_record(b, kQuestionName, kTypeA, {10, 9, 9});
      break;
    default:  // a label of the reserved type 0b10
      b.insert(b.end(), {0x80, 0x01, 'x', 0});
      put16(b, kTypeA);
      break;
  }
  return b;
}

bool parse_long(const char* text, long lo, long hi, long* out) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool parse_options(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--stray") {
      o->stray = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* value = argv[++i];
    bool ok = flag == "--port"          ? parse_long(value, 0, 65535, &o->port)
              : flag == "--drop-first"  ? parse_long(value, 0, 1000000, &o->drop_first)
              : flag == "--delay-ms"    ? parse_long(value, 0, 600000, &o->delay_ms)
              : flag == "--max-seconds" ? parse_long(value, 1, 86400, &o->max_seconds)
                                        : false;
    if (flag == "--garbage") {
      o->garbage.push_back(value);
      ok = true;
    }
    if (!ok) return false;
  }
  return true;
}

int bind_socket(long port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  std::printf("listening on port %u\n", ntohs(addr.sin_port));
  std::fflush(stdout);
  return fd;
}

// Responder answers queries on one socket, keeping delayed replies in due order.
class Responder {
 public:
  Responder(int fd, const Options& o) : fd_(fd), opts_(o) {}

  // handle() decides what, if anything, goes back for one received datagram.
  void handle(const std::uint8_t* p, std::size_t len, const sockaddr_in& from) {
    std::optional<Query> q = parse_query(p, len);
    if (!q || q->name == "silent.test" || ++seen_[q->name] <= opts_.drop_first) return;
    Bytes reply = answer(*q);
    for (std::size_t i = 0; i < opts_.garbage.size(); ++i) {
      if (q->name == opts_.garbage[i]) reply = garbage(*q, i);
    }
    auto due = Clock::now() + std::chrono::milliseconds(opts_.delay_ms);
    if (opts_.stray) {  // NXDOMAIN answers: a client that takes one prints a wrong line
      Bytes wrong_id = header(*q, 3, 0);
      wrong_id[1] ^= 0x5a;
      Bytes wrong_question = header(*q, 3, 0);
      std::uint8_t& first = wrong_question[kQuestionName + 1];  // the name's first letter
      first = first == 'z' ? 'y' : 'z';
      pending_.push_back({due, from, wrong_id});
      pending_.push_back({due, from, wrong_question});
    }
    pending_.push_back({due, from, std::move(reply)});
  }

  // flush() sends the replies that are due; returns the ms until the next one, or -1.
  int flush() {
    while (!pending_.empty()) {
      auto wait = pending_.front().due - Clock::now();
      if (wait > Clock::duration::zero()) {
        return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
      }
      const Reply& r = pending_.front();
      sendto(fd_, r.packet.data(), r.packet.size(), 0, reinterpret_cast<const sockaddr*>(&r.to),
             sizeof r.to);
      pending_.pop_front();
    }
    return -1;
  }

 private:
  int fd_;
  const Options& opts_;
  std::map<std::string, long> seen_;  // queries per name
  std::deque<Reply> pending_;         // due times ascend: every delay is the same
};

void on_signal(int) { g_stop = 1; }

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (!parse_options(argc, argv, &opts)) {
    std::fprintf(stderr,
                 "usage: dns_responder --port P [--drop-first N] [--delay-ms D] "
                 "[--garbage NAME]... [--stray] [--max-seconds S]\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: poll() returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  int fd = bind_socket(opts.port);
  if (fd < 0) {
    std::perror("dns_responder: bind 127.0.0.1");
    return 1;
  }
  Responder responder(fd, opts);
  auto end = Clock::now() + std::chrono::seconds(opts.max_seconds);
  std::uint8_t buf[1500];
  while (g_stop == 0 && Clock::now() < end) {
    int next = responder.flush();
    pollfd pfd{fd, POLLIN, 0};
    if (poll(&pfd, 1, next < 0 || next > 100 ? 100 : next) <= 0) continue;
    sockaddr_in from{};
    socklen_t from_len = sizeof from;
    ssize_t n = recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n > 0) responder.handle(buf, static_cast<std::size_t>(n), from);
  }
  close(fd);
  return 0;
}
