// PromText: a strict reader of the Prometheus text exposition format (0.0.4), for tests that
// check a whole GET /metrics answer. parse() collects every deviation with its line number:
//   - every line is "# HELP name text", "# TYPE name type", or a sample "name{labels} value";
//     no blank lines, no other comments, and the text ends with a newline;
//   - metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
//     "__..."), no label twice in a sample; label values escape only \\, \" and \n;
//   - HELP and TYPE once per family, both before its first sample, and a family's samples
//     in one block (not interleaved with another family's);
//   - a counter's name ends in _total and its values are >= 0; a gauge's samples carry its name;
//   - a histogram's samples are name_bucket (with le), name_sum and name_count; per label set
//     the le values increase, the last is +Inf, the counts never decrease, and _count equals
//     the +Inf bucket;
//   - no series (name and label set) twice.
// It also keeps every sample, so tests can ask for values and families.
//
// Thread-safety: none needed (values).
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace schedd::testing {

struct PromSample {
  std::string name;  // as written: "x_bucket" for a histogram's bucket
  std::map<std::string, std::string> labels;
  double value = 0;
  int line = 0;
};

struct PromFamily {
  std::string name;
  std::string type;  // counter, gauge, histogram, summary, untyped
  std::string help;
};

class PromText {
 public:
  static PromText parse(std::string_view text) {
    PromText p;
    p.run(text);
    return p;
  }

  bool ok() const { return errors_.empty(); }
  const std::vector<std::string>& errors() const { return errors_; }
  std::string error_text() const {
    std::string out;
    for (const auto& e : errors_) out += e + "\n";
    return out;
  }
  const std::map<std::string, PromFamily>& families() const { return families_; }
  const std::vector<PromSample>& samples() const { return samples_; }
  // Every distinct series name (a histogram's _bucket, _sum and _count each count).
  std::set<std::string> sample_names() const {
    std::set<std::string> out;
    for (const auto& s : samples_) out.insert(s.name);
    return out;
  }
  // The samples of `name` whose labels include every pair of `labels`.
  std::vector<PromSample> find(const std::string& name,
                               const std::map<std::string, std::string>& labels = {}) const {
    std::vector<PromSample> out;
    for (const auto& s : samples_) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : labels) {
        auto it = s.labels.find(k);
        all = all && it != s.labels.end() && it->second == v;
      }
      if (all) out.push_back(s);
    }
    return out;
  }
  // The value of the one sample of `name` with `labels`; nullopt when there is none or many.
  std::optional<double> value(const std::string& name,
                              const std::map<std::string, std::string>& labels = {}) const {
    auto found = find(name, labels);
    if (found.size() != 1) return std::nullopt;
    return found[0].value;
  }

 private:
  static bool name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  }
  static bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }
  static bool valid_metric_name(std::string_view n) {
    if (n.empty() || !name_start(n[0])) return false;
    for (char c : n) {
      if (!name_char(c)) return false;
    }
    return true;
  }
  static bool valid_label_name(std::string_view n) {
    if (n.empty() || !name_start(n[0]) || n[0] == ':' || n.starts_with("__")) return false;
    for (char c : n) {
      if (!name_char(c) || c == ':') return false;
    }
    return true;
  }
  static std::optional<double> number(std::string_view s) {
    if (s == "+Inf" || s == "Inf") return HUGE_VAL;
    if (s == "-Inf") return -HUGE_VAL;
    if (s == "NaN") return NAN;
    if (s.empty()) return std::nullopt;
    std::string copy(s);
    char* end = nullptr;
    const double v = std::strtod(copy.c_str(), &end);
    if (end != copy.c_str() + copy.size()) return std::nullopt;
    if (copy.find_first_of("xXpP") != std::string::npos) return std::nullopt;  // no hex floats
    if (copy == "inf" || copy == "nan" || copy.find("inf") != std::string::npos)
      return std::nullopt;
    return v;
  }

  void fail(int line, const std::string& what) {
    errors_.push_back("line " + std::to_string(line) + ": " + what);
  }

  // The family a sample name belongs to, given the families declared so far.
  std::string family_of(const std::string& name) const {
    if (families_.count(name)) return name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      std::string_view n = name;
      if (n.ends_with(suffix)) {
        std::string base(n.substr(0, n.size() - std::string_view(suffix).size()));
        auto it = families_.find(base);
        if (it != families_.end() &&
            (it->second.type == "histogram" || it->second.type == "summary")) {
          return base;
        }
      }
    }
    return name;
  }

  void run(std::string_view text) {
    if (text.empty()) {
      errors_.push_back("empty exposition");
      return;
    }
    if (text.back() != '\n') errors_.push_back("the exposition does not end with a newline");
    std::set<std::string> help_seen, type_seen, closed;
    std::string current;  // the family whose block is open
    std::set<std::string> series;
    int line_no = 0;
    std::size_t pos = 0;
    while (pos < text.size()) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string_view::npos) end = text.size();
      std::string_view line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (line.empty()) {
        fail(line_no, "blank line");
        continue;
      }
      if (line[0] == '#') {
        comment(line_no, line, help_seen, type_seen, closed, current);
        continue;
      }
      sample(line_no, line, type_seen, help_seen, closed, current, series);
    }
    check_histograms();
  }

  void open_family(int line_no, const std::string& family, std::set<std::string>& closed,
                   std::string& current) {
    if (family == current) return;
    if (closed.count(family)) fail(line_no, "family " + family + " is split into two blocks");
    if (!current.empty()) closed.insert(current);
    current = family;
  }

  void comment(int line_no, std::string_view line, std::set<std::string>& help_seen,
               std::set<std::string>& type_seen, std::set<std::string>& closed,
               std::string& current) {
    const bool help = line.starts_with("# HELP ");
    const bool type = line.starts_with("# TYPE ");
    if (!help && !type) {
      fail(line_no, "a comment other than HELP or TYPE: " + std::string(line));
      return;
    }
    std::string_view rest = line.substr(7);
    const std::size_t space = rest.find(' ');
    const std::string name(rest.substr(0, space));
    const std::string arg(space == std::string_view::npos ? "" : rest.substr(space + 1));
    if (!valid_metric_name(name)) fail(line_no, "invalid metric name \"" + name + "\"");
    if (arg.empty()) fail(line_no, std::string(help ? "HELP" : "TYPE") + " without text: " + name);
    open_family(line_no, name, closed, current);
    if (samples_by_family_.count(name)) {
      fail(line_no, std::string(help ? "HELP" : "TYPE") + " of " + name + " after its samples");
    }
    auto& f = families_[name];
    f.name = name;
    if (help) {
      if (!help_seen.insert(name).second) fail(line_no, "second HELP for " + name);
      f.help = arg;
      for (std::size_t i = 0; i < arg.size(); ++i) {
        if (arg[i] == '\\' && (i + 1 >= arg.size() || (arg[i + 1] != '\\' && arg[i + 1] != 'n'))) {
          fail(line_no, "HELP of " + name + " has a bad escape");
        }
        if (arg[i] == '\\') ++i;
      }
    } else {
      if (!type_seen.insert(name).second) fail(line_no, "second TYPE for " + name);
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      if (!kTypes.count(arg)) fail(line_no, "unknown TYPE " + arg + " for " + name);
      f.type = arg;
      if (arg == "counter" && !std::string_view(name).ends_with("_total")) {
        fail(line_no, "counter " + name + " does not end in _total");
      }
    }
  }

  void sample(int line_no, std::string_view line, const std::set<std::string>& type_seen,
              const std::set<std::string>& help_seen, std::set<std::string>& closed,
              std::string& current, std::set<std::string>& series) {
    PromSample s;
    s.line = line_no;
    std::size_t i = 0;
    while (i < line.size() && name_char(line[i])) ++i;
    s.name = std::string(line.substr(0, i));
    if (!valid_metric_name(s.name)) {
      fail(line_no, "invalid metric name in \"" + std::string(line) + "\"");
      return;
    }
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::size_t start = i;
        while (i < line.size() && line[i] != '=') ++i;
        std::string label(line.substr(start, i - start));
        if (!valid_label_name(label)) fail(line_no, "invalid label name \"" + label + "\"");
        if (i + 1 >= line.size() || line[i + 1] != '"') {
          fail(line_no, "label " + label + " without a quoted value");
          return;
        }
        i += 2;
        std::string value;
        bool closed_quote = false;
        while (i < line.size()) {
          char c = line[i];
          if (c == '\\') {
            if (i + 1 >= line.size()) break;
            char e = line[i + 1];
            if (e == '\\' || e == '"') {
              value += e;
            } else if (e == 'n') {
              value += '\n';
            } else {
              fail(line_no, std::string("bad escape \\") + e + " in label " + label);
            }
            i += 2;
            continue;
          }
          if (c == '"') {
            closed_quote = true;
            ++i;
            break;
          }
          value += c;
          ++i;
        }
        if (!closed_quote) {
          fail(line_no, "unterminated value of label " + label);
          return;
        }
        if (!s.labels.emplace(label, value).second) fail(line_no, "label " + label + " twice");
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) {
        fail(line_no, "unterminated label set");
        return;
      }
      ++i;  // '}'
    }
    if (i >= line.size() || line[i] != ' ') {
      fail(line_no, "no space before the value: \"" + std::string(line) + "\"");
      return;
    }
    std::string_view rest = line.substr(i + 1);
    const std::size_t space = rest.find(' ');
    std::string_view value = rest.substr(0, space);
    if (space != std::string_view::npos) {
      std::string_view ts = rest.substr(space + 1);
      for (char c : ts) {
        if ((c < '0' || c > '9') && c != '-') fail(line_no, "bad timestamp");
      }
    }
    auto v = number(value);
    if (!v) {
      fail(line_no, "bad value \"" + std::string(value) + "\"");
      return;
    }
    s.value = *v;

    const std::string family = family_of(s.name);
    if (!type_seen.count(family)) fail(line_no, "sample " + s.name + " before its family's TYPE");
    if (!help_seen.count(family)) fail(line_no, "sample " + s.name + " before its family's HELP");
    open_family(line_no, family, closed, current);
    samples_by_family_.insert(family);
    const auto fit = families_.find(family);
    const std::string type = fit == families_.end() ? "" : fit->second.type;
    if (type == "counter" && !(s.value >= 0)) fail(line_no, "negative counter " + s.name);
    if ((type == "counter" || type == "gauge" || type == "untyped") && s.name != family) {
      fail(line_no, "sample " + s.name + " in family " + family);
    }
    if (type == "histogram") {
      const bool bucket = s.name == family + "_bucket";
      if (!bucket && s.name != family + "_sum" && s.name != family + "_count") {
        fail(line_no, "histogram " + family + " has sample " + s.name);
      }
      if (bucket != (s.labels.count("le") == 1)) {
        fail(line_no, "le belongs on the buckets of " + family + ", only there");
      }
      if (bucket) {
        auto le = number(s.labels["le"]);
        if (!le) fail(line_no, "bad le \"" + s.labels["le"] + "\"");
      }
    }
    std::string key = s.name + "{";
    for (const auto& [k, val] : s.labels) key += k + "=\"" + val + "\",";
    key += "}";
    if (!series.insert(key).second) fail(line_no, "duplicate series " + key);
    samples_.push_back(std::move(s));
  }

  void check_histograms() {
    for (const auto& [name, f] : families_) {
      if (f.type != "histogram") continue;
      // Per label set without le: the buckets in order, the sum and the count.
      struct Group {
        std::vector<std::pair<double, double>> buckets;  // le, count
        std::optional<double> sum, count;
        int line = 0;
      };
      std::map<std::string, Group> groups;
      for (const auto& s : samples_) {
        std::map<std::string, std::string> rest = s.labels;
        rest.erase("le");
        std::string key;
        for (const auto& [k, v] : rest) key += k + "=" + v + ",";
        if (s.name == name + "_bucket") {
          auto le = s.labels.count("le") ? number(s.labels.at("le")) : std::nullopt;
          if (!le) continue;  // reported where the sample was read
          auto& g = groups[key];
          g.line = s.line;
          g.buckets.emplace_back(*le, s.value);
        } else if (s.name == name + "_sum") {
          groups[key].sum = s.value;
        } else if (s.name == name + "_count") {
          groups[key].count = s.value;
        }
      }
      for (const auto& [key, g] : groups) {
        const std::string where = name + "{" + key + "}";
        if (g.buckets.empty()) {
          fail(g.line, where + " has no buckets");
          continue;
        }
        for (std::size_t i = 1; i < g.buckets.size(); ++i) {
          if (!(g.buckets[i].first > g.buckets[i - 1].first)) {
            fail(g.line, where + ": le does not increase");
          }
          if (g.buckets[i].second < g.buckets[i - 1].second) {
            fail(g.line, where + ": bucket counts decrease");
          }
        }
        if (!std::isinf(g.buckets.back().first)) fail(g.line, where + ": no le=\"+Inf\" bucket");
        if (!g.sum) fail(g.line, where + ": no _sum");
        if (!g.count) {
          fail(g.line, where + ": no _count");
        } else if (*g.count != g.buckets.back().second) {
          fail(g.line, where + ": _count differs from the +Inf bucket");
        }
      }
    }
  }

  std::vector<std::string> errors_;
  std::map<std::string, PromFamily> families_;
  std::set<std::string> samples_by_family_;
  std::vector<PromSample> samples_;
};

}  // namespace schedd::testing
