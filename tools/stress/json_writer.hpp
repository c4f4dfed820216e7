// JsonWriter: a small writer of indented JSON with correct string escaping.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace coil_stress {

// JsonWriter builds a JSON text in a string. The caller nests begin_*/end_* correctly and
// names every member of an object with key() first; the writer adds commas, indentation and
// escapes. Doubles that are not finite become null, as JSON has no NaN or infinity.
class JsonWriter {
 public:
  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }

  // key() names the next value of the enclosing object.
  void key(std::string_view name) {
    separate();
    quote(name);
    out_ += ": ";
    after_key_ = true;
  }

  void value(std::string_view text) {
    separate();
    quote(text);
  }
  void value(const char* text) { value(std::string_view(text)); }
  void value(bool flag) {
    separate();
    out_ += flag ? "true" : "false";
  }
  void value(std::uint64_t n) {
    separate();
    out_ += std::to_string(n);
  }
  void value(std::int64_t n) {
    separate();
    out_ += std::to_string(n);
  }
  void value(int n) { value(static_cast<std::int64_t>(n)); }
  void value(double x) {
    separate();
    if (!std::isfinite(x)) {
      out_ += "null";
      return;
    }
    char buf[32];  // the shortest text that reads back as x
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, x);
    out_.append(buf, ec == std::errc() ? end : buf);
  }

  // member() is key() then value().
  template <class T>
  void member(std::string_view name, T v) {
    key(name);
    value(v);
  }

  // text() is the JSON so far, with a final newline once everything is closed.
  std::string text() const { return depth_.empty() ? out_ + "\n" : out_; }

 private:
  void open(char bracket) {
    separate();
    out_ += bracket;
    depth_.push_back(true);  // true: the next element is the first
  }

  void close(char bracket) {
    bool empty = depth_.back();
    depth_.pop_back();
    if (!empty) newline();
    out_ += bracket;
  }

  // separate() puts the comma and line break before an element (not after a key).
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (depth_.empty()) return;
    if (!depth_.back()) out_ += ',';
    depth_.back() = false;
    newline();
  }

  void newline() {
    out_ += '\n';
    out_.append(2 * depth_.size(), ' ');
  }

  void quote(std::string_view text) {
    out_ += '"';
    for (char c : text) {
      auto u = static_cast<unsigned char>(c);
      switch (c) {
        case '"':
          out_ += "\\\"";
          break;
        case '\\':
          out_ += "\\\\";
          break;
        case '\n':
          out_ += "\\n";
          break;
        case '\r':
          out_ += "\\r";
          break;
        case '\t':
          out_ += "\\t";
          break;
        case '\b':
          out_ += "\\b";
          break;
        case '\f':
          out_ += "\\f";
          break;
        default:
          if (u < 0x20 || u == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", u);
            out_ += buf;
          } else {
            out_ += c;  // UTF-8 passes through as is
          }
      }
    }
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> depth_;
  bool after_key_ = false;
};

}  // namespace coil_stress
