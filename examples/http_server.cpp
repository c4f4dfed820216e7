// http_server: serves /plaintext and files under --root over HTTP/1.1, a coroutine per connection.
//
// Written in plain blocking style: an accept loop hands every connection to its own coroutine,
// which calls read, send and sendfile as if it had a thread to itself; coil's hooks park it on
// epoll whenever a call would block. Requests are parsed with http-parser and answered in order,
// so keep-alive and pipelining need nothing special: the responses to everything one read
// brought in go out with one send. Files are sent with sendfile(2) from a small cache of open
// files under a kernel-enforced "beneath the root" lookup. Idle connections, slow requests
// (slowloris) and clients that stop reading are dropped after --idle-timeout-ms.
#include <fcntl.h>
#include <http_parser.h>
#include <linux/openat2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coil/runtime.hpp"
#include "coil/scheduler.hpp"

namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kReadBufferSize = 16 * 1024;  // one read; pipelined requests share it
constexpr std::size_t kOutputSize = 16 * 1024;      // responses waiting for one send
constexpr std::size_t kMaxHeadSize = 512;           // the longest response head plus error body
constexpr std::size_t kMaxCachedFiles = 256;        // open fds the file cache may hold
constexpr auto kLingerTime = milliseconds(1000);    // draining after an error response
constexpr int kLingerReads = 64;                    // ... and at most this many reads of it

// Options are the command-line settings.
struct Options {
  std::string host = "0.0.0.0";
  int port = 0;
  std::string root;
  int idle_timeout_ms = 10000;
  std::uint32_t max_header_bytes = 8192;
  std::uint64_t max_body_bytes = 1024 * 1024;
  int threads = 1;  // workers, each with its own listener (SO_REUSEPORT), scheduler and caches
  bool pin = false;
};

// kStatusLines are the status lines this server sends; the last one is the fallback.
constexpr std::pair<int, std::string_view> kStatusLines[] = {
    {200, "HTTP/1.1 200 OK\r\n"},
    {400, "HTTP/1.1 400 Bad Request\r\n"},
    {403, "HTTP/1.1 403 Forbidden\r\n"},
    {404, "HTTP/1.1 404 Not Found\r\n"},
    {405, "HTTP/1.1 405 Method Not Allowed\r\n"},
    {413, "HTTP/1.1 413 Content Too Large\r\n"},
    {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {503, "HTTP/1.1 503 Service Unavailable\r\n"},
    {500, "HTTP/1.1 500 Internal Server Error\r\n"}};

// status_line() returns the status line of status (500's if it is not one of kStatusLines).
std::string_view status_line(int status) {
  for (const auto& [code, line] : kStatusLines)
    if (code == status) return line;
  return std::end(kStatusLines)[-1].second;
}

// content_type() picks the Content-Type of a file from its extension.
std::string_view content_type(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".json", "application/json"},
      {".xml", "application/xml"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".webp", "image/webp"},
      {".ico", "image/x-icon"},
      {".wasm", "application/wasm"},
      {".pdf", "application/pdf"}};
  std::size_t dot = path.rfind('.');
  std::size_t slash = path.rfind('/');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    for (const auto& [ext, type] : kTypes)
      if (path.substr(dot) == ext) return type;
  }
  return "application/octet-stream";
}

// status_for_errno() maps a failed open of a requested path to the status to answer.
int status_for_errno(int error) {
  if (error == ENOENT || error == ENOTDIR || error == ENAMETOOLONG) return 404;
  if (error == EXDEV || error == ELOOP || error == EACCES || error == EPERM)
    return 403;  // EXDEV: leaves the root
  return error == EMFILE || error == ENFILE ? 503 : 500;
}

// DateHeader is the "Date: ...\r\n" line, formatted at most once per second.
class DateHeader {
 public:
  // line() returns the header line for the second now.
  std::string_view line(std::time_t now) {
    if (now != formatted_at_) {
      std::tm tm{};
      gmtime_r(&now, &tm);
      len_ = std::strftime(buf_, sizeof buf_, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
      formatted_at_ = now;
    }
    return {buf_, len_};
  }

 private:
  std::time_t formatted_at_ = -1;
  char buf_[64] = {};
  std::size_t len_ = 0;
};

// OpenFile is a regular file under the root, kept open for sendfile(2). Shared: a connection
// still sending a file the cache has dropped keeps it open until it is done.
struct OpenFile {
  int fd = -1;
  off_t size = 0;
  dev_t dev = 0;
  ino_t ino = 0;
  timespec mtime{};
  std::string_view type;
  std::string rel;             // the path opened, relative to the root (index.html included)
  std::time_t checked_at = 0;  // the second rel was last seen unchanged

  OpenFile() = default;
  OpenFile(const OpenFile&) = delete;
  OpenFile& operator=(const OpenFile&) = delete;
  ~OpenFile() {
    if (fd >= 0) close(fd);
  }
};

// FileLookup is the outcome of FileCache::find(): status 200 and a file, or an error status.
struct FileLookup {
  int status = 500;
  std::shared_ptr<OpenFile> file;
};

// StringHash lets the cache be searched with a string_view, without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

// FileCache maps request paths (relative to the root) to open files. Why a cache: open, fstat
// and close cost three syscalls per request, more than the response itself (a send and a
// sendfile); a hit costs a hash lookup, and a path is re-stat'ed at most once per second so
// that a changed or replaced file is picked up. Misses (404, 403) are not cached. When full it
// is simply emptied: the files in it are cheap to reopen and the bound is what matters.
class FileCache {
 public:
  FileCache(int root_fd, std::string root_path)
      : root_fd_(root_fd), root_path_(std::move(root_path)) {}

  // find() returns the open file for key ("" is the root itself), opening it on a miss.
  FileLookup find(std::string_view key, std::time_t now) {
    if (auto it = files_.find(key); it != files_.end()) {
      if (it->second->checked_at == now || unchanged(*it->second, now)) return {200, it->second};
      files_.erase(it);
    }
    return open_file(key, now);
  }

 private:
  // unchanged() re-stats the file's path: true if it still names the same, unmodified file.
  bool unchanged(OpenFile& file, std::time_t now) const {
    struct stat st {};
    if (fstatat(root_fd_, file.rel.c_str(), &st, 0) != 0) return false;
    if (st.st_dev != file.dev || st.st_ino != file.ino || st.st_size != file.size ||
        st.st_mtim.tv_sec != file.mtime.tv_sec || st.st_mtim.tv_nsec != file.mtime.tv_nsec)
      return false;
    file.checked_at = now;
    return true;
  }

  // open_beneath() opens rel for reading only if it resolves inside the root, symlinks
  // included: the kernel enforces it (openat2 RESOLVE_BENEATH fails with EXDEV). Without
  // openat2 (Linux < 5.6) the path is resolved with realpath() and its prefix checked.
  int open_beneath(const std::string& rel) const {
    constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;  // a FIFO must not block
    open_how how{};
    how.flags = kFlags;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, root_fd_, rel.c_str(), &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    std::string full = root_path_ + "/" + rel;
    char resolved[PATH_MAX];
    if (realpath(full.c_str(), resolved) == nullptr) return -1;
    std::string_view path(resolved);
    bool inside = root_path_ == "/" || path == root_path_ ||
                  (path.starts_with(root_path_) && path[root_path_.size()] == '/');
    if (!inside) {
      errno = EXDEV;
      return -1;
    }
    return open(resolved, kFlags);
  }

  // open_file() opens key, or the index.html of the directory key names, and caches it.
  FileLookup open_file(std::string_view key, std::time_t now) {
    auto file = std::make_shared<OpenFile>();
    file->rel = key.empty() ? std::string(".") : std::string(key);
    struct stat st {};
    file->fd = open_beneath(file->rel);
    if (file->fd < 0) return {status_for_errno(errno), nullptr};
    if (fstat(file->fd, &st) != 0) return {500, nullptr};
    if (S_ISDIR(st.st_mode)) {
      close(std::exchange(file->fd, -1));
      file->rel += "/index.html";
      file->fd = open_beneath(file->rel);
      if (file->fd < 0) return {errno == ENOENT ? 403 : status_for_errno(errno), nullptr};
      if (fstat(file->fd, &st) != 0) return {500, nullptr};
    }
    if (!S_ISREG(st.st_mode)) return {403, nullptr};
    file->size = st.st_size;
    file->dev = st.st_dev;
    file->ino = st.st_ino;
    file->mtime = st.st_mtim;
    file->type = content_type(file->rel);
    file->checked_at = now;
    if (files_.size() >= kMaxCachedFiles) files_.clear();
    files_.emplace(std::string(key), file);
    return {200, std::move(file)};
  }

  int root_fd_;
  std::string root_path_;
  std::unordered_map<std::string, std::shared_ptr<OpenFile>, StringHash, std::equal_to<>> files_;
};

// Server is what every connection shares. All of it is touched by one thread only.
struct Server {
  Options opts;
  FileCache files;
  DateHeader date;
};

// request_path() returns the path of a request target (origin or absolute form), without its
// query and fragment, or an empty view if the target has none.
std::string_view request_path(std::string_view target) {
  if (!target.starts_with('/')) {
    http_parser_url url{};
    http_parser_url_init(&url);
    if (http_parser_parse_url(target.data(), target.size(), 0, &url) != 0) return {};
    if ((url.field_set & (1 << UF_PATH)) == 0) return (url.field_set & (1 << UF_HOST)) ? "/" : "";
    target = target.substr(url.field_data[UF_PATH].off, url.field_data[UF_PATH].len);
  }
  return target.substr(0, target.find_first_of("?#"));
}

// decode_path() percent-decodes path into out. Returns 0, or the status that refuses it: 400
// for a bad escape, 403 for a NUL byte or a ".." segment.
int decode_path(std::string_view path, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < path.size(); ++i) {
    char c = path[i];
    if (c == '%') {
      unsigned char byte = 0;
      const char* hex = path.data() + i + 1;
      if (i + 2 >= path.size() || std::from_chars(hex, hex + 2, byte, 16).ptr != hex + 2)
        return 400;
      c = static_cast<char>(byte);
      i += 2;
    }
    if (c == '\0') return 403;
    out.push_back(c);
  }
  std::string_view rest(out);
  while (!rest.empty()) {  // one pass per segment
    std::size_t slash = rest.find('/');
    if (rest.substr(0, slash) == "..") return 403;
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  }
  return 0;
}

// Output collects the responses to the requests of one read, to go out with one send.
class Output {
 public:
  // room() is how many more bytes fit.
  std::size_t room() const noexcept { return sizeof buf_ - len_; }
  bool empty() const noexcept { return len_ == 0; }

  // append() adds s. Precondition: room() >= s.size().
  void append(std::string_view s) noexcept {
    std::memcpy(buf_ + len_, s.data(), s.size());
    len_ += s.size();
  }
  void append_number(std::uint64_t v) noexcept {
    len_ = static_cast<std::size_t>(std::to_chars(buf_ + len_, buf_ + sizeof buf_, v).ptr - buf_);
  }

  // flush() sends everything with send(2) flags (MSG_MORE when a body follows). False when the
  // peer is gone or did not read for the write timeout (SO_SNDTIMEO).
  bool flush(int fd, int flags) {
    std::size_t sent = 0;
    while (sent < len_) {  // every pass sends at least one byte or gives up
      ssize_t n = send(fd, buf_ + sent, len_ - sent, flags | MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    bool all = sent == len_;
    len_ = 0;
    return all;
  }

 private:
  char buf_[kOutputSize];
  std::size_t len_ = 0;
};

// Connection serves one client: it reads requests, answers them in order and closes when the
// client does, a response says so, or a timeout passes. It lives on its coroutine's stack.
class Connection {
 public:
  Connection(Server& server, int fd) : server_(server), fd_(fd) {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    url_.reserve(256);
    path_.reserve(256);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { close(fd_); }

  // serve() runs the connection until it closes.
  void serve() {
    if (!set_timeouts()) return;
    for (;;) {  // one pass per read; the connection's end ends it
      ssize_t n = receive();
      if (n <= 0) return;  // closed, idle for the timeout, too slow or failed
      bool open = consume(static_cast<std::size_t>(n));
      if (!out_.empty() && !out_.flush(fd_, 0)) return;
      if (!open) {
        if (refused_) linger();
        return;
      }
    }
  }

 private:
  static Connection& self(http_parser* p) { return *static_cast<Connection*>(p->data); }

  // parser_settings() are the http-parser callbacks. Header fields are not looked at: the
  // parser itself tracks Connection, Content-Length and Transfer-Encoding.
  static const http_parser_settings& parser_settings() {
    static const http_parser_settings settings = [] {
      http_parser_settings s;
      http_parser_settings_init(&s);
      s.on_message_begin = on_message_begin;
      s.on_url = on_url;
      s.on_headers_complete = on_headers_complete;
      s.on_body = on_body;
      s.on_message_complete = on_message_complete;
      return s;
    }();
    return settings;
  }

  static int on_message_begin(http_parser* p) {
    Connection& c = self(p);
    c.url_.clear();
    c.body_bytes_ = 0;
    c.in_request_ = true;
    c.has_deadline_ = false;
    return 0;
  }
  static int on_url(http_parser* p, const char* at, std::size_t len) {
    self(p).url_.append(at, len);  // bounded: the parser counts it against the header cap
    return 0;
  }
  static int on_headers_complete(http_parser* p) {
    Connection& c = self(p);
    bool too_long =
        (p->flags & F_CONTENTLENGTH) && p->content_length > c.server_.opts.max_body_bytes;
    return too_long ? c.reject(413) : 0;
  }
  static int on_body(http_parser* p, const char*, std::size_t len) {
    Connection& c = self(p);
    c.body_bytes_ += len;  // counts chunked bodies; Content-Length was checked before
    return c.body_bytes_ > c.server_.opts.max_body_bytes ? c.reject(413) : 0;
  }
  static int on_message_complete(http_parser* p) {
    self(p).in_request_ = false;
    http_parser_pause(p, 1);  // http_parser_execute() returns here; consume() answers
    return 0;
  }

  // reject() makes the parser stop with status as the answer.
  int reject(int status) {
    reject_status_ = status;
    return -1;
  }

  // set_timeouts() sets the read and write timeouts once for the connection's life, and
  // turns off Nagle: a response's last segment must not wait for the client's ACK.
  bool set_timeouts() {
    int ms = server_.opts.idle_timeout_ms;
    timeval tv{.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    int one = 1;
    return setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
           setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) == 0 &&
           setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0;
  }

  // receive() reads what the client sent into in_. Between requests the read waits up to the
  // idle timeout (SO_RCVTIMEO); inside a request, only until the request's deadline.
  ssize_t receive() {
    if (in_request_ && !wait_for_rest()) return 0;
    for (int tries = 0; tries < 8; ++tries) {  // retries interrupted reads only
      ssize_t n = read(fd_, in_, sizeof in_);
      if (n >= 0 || errno != EINTR) return n;  // EAGAIN: SO_RCVTIMEO passed, idle
    }
    return -1;
  }

  // wait_for_rest() waits for more of a request already begun. A request must be complete
  // within the idle timeout of its first read, so a client that trickles a header line now
  // and then (slowloris) is dropped. False: the deadline passed.
  bool wait_for_rest() {
    if (!has_deadline_) {
      deadline_ = SteadyClock::now() + milliseconds(server_.opts.idle_timeout_ms);
      has_deadline_ = true;
    }
    return readable_by(deadline_);
  }

  // readable_by() waits (poll(2), which parks the coroutine) until the client sends something
  // or deadline passes. False: it passed, or the wait failed.
  bool readable_by(SteadyClock::time_point deadline) {
    auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now()).count();
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    return left > 0 && poll(&p, 1, static_cast<int>(left)) > 0;
  }

  // consume() parses the n bytes read and answers every request they complete, in order.
  // False: close the connection once the responses are sent.
  bool consume(std::size_t n) {
    now_ = std::time(nullptr);
    std::size_t done = 0;
    while (done < n) {  // one pass per complete request, and one for the rest
      done += http_parser_execute(&parser_, &parser_settings(), in_ + done, n - done);
      http_errno error = HTTP_PARSER_ERRNO(&parser_);
      if (error == HPE_OK) break;  // all parsed; the request goes on in the next read
      if (error != HPE_PAUSED) return refuse(error);
      http_parser_pause(&parser_, 0);
      if (!answer() || parser_.upgrade) return false;
    }
    return true;
  }

  // refuse() answers a request the parser stopped on, then the connection closes.
  bool refuse(http_errno error) {
    int status = reject_status_ != 0 ? reject_status_ : error == HPE_HEADER_OVERFLOW ? 431 : 400;
    keep_alive_ = false;
    head_only_ = false;
    if (out_.room() < kMaxHeadSize && !out_.flush(fd_, 0)) return false;
    add_error(status);
    refused_ = true;
    return false;
  }

  // answer() answers the request the parser just completed. False: close after it.
  bool answer() {
    keep_alive_ = http_should_keep_alive(&parser_) != 0;
    http10_ = parser_.http_major == 1 && parser_.http_minor == 0;
    head_only_ = parser_.method == HTTP_HEAD;
    if (out_.room() < kMaxHeadSize && !out_.flush(fd_, 0)) return false;
    if (parser_.method != HTTP_GET && parser_.method != HTTP_HEAD) {
      add_error(405);
      return keep_alive_;
    }
    std::string_view path = request_path(url_);
    int refusal = path.empty() ? 400 : decode_path(path, path_);
    if (refusal != 0) {
      add_error(refusal);
      return keep_alive_ && refusal != 400;
    }
    if (path_ == "/plaintext") {
      add_head(200, "text/plain", 13);
      if (!head_only_) out_.append("Hello, World!");
      return keep_alive_;
    }
    return answer_file();
  }

  // answer_file() sends the file path_ names: the head, then the body with sendfile(2).
  bool answer_file() {
    std::string_view key(path_);
    key.remove_prefix(std::min(key.find_first_not_of('/'), key.size()));
    FileLookup found = server_.files.find(key, now_);  // holds the file open while sending
    if (found.status != 200) {
      add_error(found.status);
      return keep_alive_;
    }
    const OpenFile& file = *found.file;
    add_head(200, file.type, static_cast<std::uint64_t>(file.size));
    if (head_only_ || file.size == 0) return keep_alive_;
    if (!out_.flush(fd_, MSG_MORE)) return false;  // the head waits for the body's first bytes
    return send_file(file) && keep_alive_;
  }

  // send_file() sends the whole file. False on error, write timeout or a file that shrank.
  bool send_file(const OpenFile& file) {
    off_t offset = 0;
    while (offset < file.size) {  // every pass sends at least one byte or gives up
      ssize_t n = sendfile(fd_, file.fd, &offset, static_cast<std::size_t>(file.size - offset));
      if (n > 0 || (n < 0 && errno == EINTR)) continue;
      return false;
    }
    return true;
  }

  // add_head() adds a response's status line and headers to out_.
  void add_head(int status, std::string_view type, std::uint64_t length) {
    out_.append(status_line(status));
    out_.append("Server: coil\r\n");
    out_.append(server_.date.line(now_));
    out_.append("Content-Type: ");
    out_.append(type);
    out_.append("\r\nContent-Length: ");
    out_.append_number(length);
    out_.append("\r\n");
    if (!keep_alive_) {
      out_.append("Connection: close\r\n");
    } else if (http10_) {
      out_.append("Connection: keep-alive\r\n");
    }
    if (status == 405) out_.append("Allow: GET, HEAD\r\n");
    out_.append("\r\n");
  }

  // add_error() adds an error response whose body is its reason phrase.
  void add_error(int status) {
    std::string_view line = status_line(status);
    std::string_view reason = line.substr(9, line.size() - 11);  // "404 Not Found"
    add_head(status, "text/plain; charset=utf-8", reason.size() + 1);
    if (head_only_) return;
    out_.append(reason);
    out_.append("\n");
  }

  // linger() half-closes after an error response and drains what the client still sends, for
  // a while: closing with unread input would make the kernel reset the connection, and the
  // reset can destroy the response before the client reads it.
  void linger() {
    if (shutdown(fd_, SHUT_WR) != 0) return;
    auto deadline = SteadyClock::now() + kLingerTime;
    for (int i = 0; i < kLingerReads; ++i) {  // bounded in time and in bytes
      if (!readable_by(deadline) || read(fd_, in_, sizeof in_) <= 0) return;
    }
  }

  Server& server_;
  int fd_;
  http_parser parser_{};
  std::string url_;   // the request target, as received
  std::string path_;  // its path, percent-decoded
  std::uint64_t body_bytes_ = 0;
  int reject_status_ = 0;  // set by a callback that stopped the parser
  bool in_request_ = false;
  bool has_deadline_ = false;
  SteadyClock::time_point deadline_{};
  bool keep_alive_ = true;
  bool http10_ = false;
  bool head_only_ = false;
  bool refused_ = false;
  std::time_t now_ = 0;
  Output out_;
  char in_[kReadBufferSize];
};

// serve_connection() is the body of a connection's coroutine.
void serve_connection(Server& server, int fd) {
  try {
    Connection connection(server, fd);
    connection.serve();
  } catch (const std::exception& e) {  // out of memory, most likely; drop this connection only
    std::fprintf(stderr, "http_server: connection dropped: %s\n", e.what());
  }
}

// accept_loop() accepts connections and gives each a coroutine. Returns when the listening
// socket is unusable. Other errors concern one connection (ECONNABORTED, EPROTO, ...), or say
// the process is out of fds or memory, where retrying at once would spin.
void accept_loop(Server& server, int listen_fd) {
  bool backing_off = false;
  for (;;) {  // runs for the life of the server
    int fd = accept(listen_fd, nullptr, nullptr);
    if (fd >= 0) {
      backing_off = false;
      try {
        coil::go([&server, fd] { serve_connection(server, fd); }, {.name = "http-connection"});
      } catch (const std::exception& e) {
        close(fd);
        std::fprintf(stderr, "http_server: no coroutine for a connection: %s\n", e.what());
        coil::sleep_for(milliseconds(10));
      }
      continue;
    }
    int error = errno;
    if (error == EBADF || error == EINVAL || error == ENOTSOCK || error == EFAULT) {
      std::fprintf(stderr, "http_server: accept: %s\n", std::strerror(error));
      return;
    }
    if (error != EMFILE && error != ENFILE && error != ENOBUFS && error != ENOMEM) continue;
    if (!backing_off) {  // out of fds or memory: log once, wait for connections to close
      std::fprintf(stderr, "http_server: accept: %s; pausing accepts until connections close\n",
                   std::strerror(error));
      backing_off = true;
    }
    coil::sleep_for(milliseconds(50));
  }
}

// listen_on() returns a listening TCP socket on host:port, with SO_REUSEPORT if reuse_port, or
// -1 with a message in error.
int listen_on(const std::string& host, int port, bool reuse_port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = "--host " + host + ": " + gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(found, freeaddrinfo);
  error = "no address for --host " + host;
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0 &&
        (!reuse_port || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) == 0) &&
        bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
      return fd;
    error = "listen on " + host + ":" + service + ": " + std::strerror(errno);
    close(fd);
  }
  return -1;
}

// bound_port() returns the port a socket is bound to, or -1.
int bound_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

// parse_options() reads the command line. Returns -1 to go on, or the exit code.
int parse_options(int argc, char** argv, Options& opts) {
  CLI::App app{"http_server: serves /plaintext and the files under --root over HTTP/1.1"};
  app.add_option("--port", opts.port, "TCP port to listen on (0: any free port)")
      ->required()
      ->check(CLI::Range(0, 65535));
  app.add_option("--root", opts.root, "Directory whose files are served")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--host", opts.host, "Address to listen on")->capture_default_str();
  app.add_option("--idle-timeout-ms", opts.idle_timeout_ms,
                 "Close connections idle, slow to send a request or not reading this long")
      ->capture_default_str()
      ->check(CLI::Range(1, 24 * 3600 * 1000));
  app.add_option("--max-header-bytes", opts.max_header_bytes,
                 "Largest request line plus headers (larger: 431)")
      ->capture_default_str()
      ->check(CLI::Range(256U, 1U << 24));
  app.add_option("--max-body-bytes", opts.max_body_bytes, "Largest request body (larger: 413)")
      ->capture_default_str();
  app.add_option("--threads", opts.threads, "Worker threads, each accepting its own connections")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_flag("--pin", opts.pin, "Pin worker i to CPU i (with --threads)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);  // prints the help or the error
    return code == 0 ? 0 : 2;
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opts;
  if (int code = parse_options(argc, argv, opts); code >= 0) return code;
  char root_path[PATH_MAX];
  int root_fd = open(opts.root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0 || realpath(opts.root.c_str(), root_path) == nullptr) {
    std::fprintf(stderr, "http_server: --root %s: %s\n", opts.root.c_str(), std::strerror(errno));
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a peer gone mid-sendfile is an error return, not a signal
  http_parser_set_max_header_size(opts.max_header_bytes);

  // One listener per worker, all on the port the first one got.
  std::vector<int> listeners;
  for (int i = 0, port = opts.port; i < opts.threads; ++i) {
    std::string error;
    int fd = listen_on(opts.host, port, opts.threads > 1, error);
    if (fd < 0) {
      std::fprintf(stderr, "http_server: %s\n", error.c_str());
      return 1;
    }
    listeners.push_back(fd);
    port = bound_port(fd);
  }
  std::printf("listening on port %d\n", bound_port(listeners.front()));
  std::fflush(stdout);

  // A Server per worker: its file cache and Date header are that worker's alone.
  std::deque<Server> servers;
  for (int i = 0; i < opts.threads; ++i) {
    servers.push_back(Server{.opts = opts, .files = FileCache(root_fd, root_path), .date = {}});
  }
  if (opts.threads == 1) {
    coil::run([&] { accept_loop(servers.front(), listeners.front()); });
  } else {
    coil::Runtime runtime({.workers = opts.threads, .pin = opts.pin});
    for (int i = 0; i < opts.threads; ++i) {
      runtime.go_on(i, [&server = servers[static_cast<std::size_t>(i)],
                        fd = listeners[static_cast<std::size_t>(i)]] { accept_loop(server, fd); });
    }
    runtime.wait();
  }
  return 1;  // the accept loop only returns on a fatal error
}
