// schedctl: the command line of the control API (docs/api.md). Address and token come from
// flags, then the environment (SCHEDD_ADDR, SCHEDD_TOKEN), then a schedd config file
// (--config: [api] listen and token_file/token_env), then 127.0.0.1:7878 without a token.
// --json prints the API's JSON for every command. Exit codes: 0 success, 1 the API refused
// (its error on stderr), 2 usage, 3 the daemon cannot be reached.
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "client.h"
#include "core/api/api.h"
#include "core/config/config.h"

namespace {

using json = nlohmann::json;
using schedctl::ApiClient;
using schedctl::HttpResult;

constexpr int kOk = 0;
constexpr int kRefused = 1;
constexpr int kUsage = 2;
constexpr int kUnreachable = 3;

struct Options {
  std::string addr;
  std::string token;
  std::string config;
  bool json_out = false;
};

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ':' || c == '@') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// A "k=v" param: integers, true/false and JSON values ([..], {..}) keep their type.
bool add_param(json& params, const std::string& kv) {
  const auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
  json parsed = json::parse(v, nullptr, false);
  if (!parsed.is_discarded() && (parsed.is_number_integer() || parsed.is_boolean() ||
                                 parsed.is_array() || parsed.is_object() || parsed.is_number())) {
    params[k] = parsed;
  } else {
    params[k] = v;
  }
  return true;
}

// schedctl backup FILE: POST /v1/store/backup and write the bytes to FILE through a temporary
// file beside it (fsynced, then renamed), so that FILE is either the whole copy or untouched.
int save_backup(ApiClient& client, const std::string& file, bool force) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!force && fs::exists(file, ec)) {
    std::cerr << "schedctl: backup: " << file << " exists (--force replaces it)\n";
    return kUsage;
  }
  HttpResult r = client.call("POST", "/v1/store/backup", "");
  if (r.status == 0) {
    std::cerr << "schedctl: " << r.error << "\n";
    return kUnreachable;
  }
  if (r.status != 200) {
    json j = json::parse(r.body, nullptr, false);
    std::string message = r.body;
    if (j.is_object() && j.contains("error")) message = j["error"].value("message", r.body);
    std::cerr << "schedctl: backup: HTTP " << r.status << ": " << message << "\n";
    return kRefused;
  }
  static constexpr char kMagic[] = "SQLite format 3";  // with its NUL: the file's first 16 bytes
  if (r.body.size() < 100 || r.body.compare(0, sizeof kMagic, kMagic, sizeof kMagic) != 0) {
    std::cerr << "schedctl: backup: the daemon's answer is not an SQLite database ("
              << r.body.size() << " bytes); nothing written\n";
    return kRefused;
  }
  const std::string tmp = file + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::cerr << "schedctl: backup: cannot create " << tmp << ": " << std::strerror(errno) << "\n";
    return kRefused;
  }
  std::size_t done = 0;
  while (done < r.body.size()) {
    const ssize_t n = ::write(fd, r.body.data() + done, r.body.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  const int err = done == r.body.size() ? (::fsync(fd) == 0 ? 0 : errno) : errno;
  ::close(fd);
  if (err != 0 || done != r.body.size() || std::rename(tmp.c_str(), file.c_str()) != 0) {
    std::cerr << "schedctl: backup: cannot write " << file << ": "
              << std::strerror(err != 0 ? err : errno) << "\n";
    ::unlink(tmp.c_str());
    return kRefused;
  }
  std::printf("store backup written to %s (%zu bytes)\n", file.c_str(), r.body.size());
  return kOk;
}

class Ctl {
 public:
  explicit Ctl(const Options& o) : o_(o), client_(resolve_addr(o), resolve_token(o)) {}

  // Sends a request; on success prints the JSON (--json) or calls `human`; returns the exit
  // code.
  int run(const std::string& method, const std::string& target, const std::string& body,
          const std::function<void(const json&)>& human) {
    HttpResult r = client_.call(method, target, body);
    if (r.status == 0) {
      std::cerr << "schedctl: " << r.error << "\n";
      return kUnreachable;
    }
    json j = json::parse(r.body, nullptr, false);
    if (r.status >= 300) {
      if (o_.json_out) std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
      std::string message = r.body;
      if (j.is_object() && j.contains("error")) {
        message = j["error"].value("code", "") + ": " + j["error"].value("message", "");
      }
      std::cerr << "schedctl: HTTP " << r.status << ": " << message;
      if (auto it = r.headers.find("Retry-After"); it != r.headers.end()) {
        std::cerr << " (retry after " << it->second << " s)";
      }
      std::cerr << "\n";
      // A refused reload lists every error of the config, in check-config's form.
      if (!o_.json_out && j.is_object() && j.contains("error") &&
          j["error"].value("errors", json::array()).is_array()) {
        for (const auto& e : j["error"].value("errors", json::array())) {
          if (e.is_string()) std::cerr << "  " << e.get<std::string>() << "\n";
        }
      }
      return kRefused;
    }
    if (o_.json_out || j.is_discarded()) {
      std::cout << r.body << (r.body.ends_with("\n") ? "" : "\n");
    } else {
      human(j);
    }
    return kOk;
  }

  ApiClient& client() { return client_; }
  bool json_out() const { return o_.json_out; }

 private:
  static std::optional<schedd::Config> load(const Options& o) {
    if (o.config.empty()) return std::nullopt;
    std::vector<schedd::ConfigError> errors;
    auto c = schedd::load_config(o.config, errors);
    for (const auto& e : errors) std::cerr << "schedctl: " << e.to_string() << "\n";
    return c;
  }
  static std::string resolve_addr(const Options& o) {
    if (!o.addr.empty()) return o.addr;
    if (const char* e = std::getenv("SCHEDD_ADDR"); e && *e) return e;
    if (auto c = load(o)) return c->listen;
    return "127.0.0.1:7878";
  }
  static std::optional<std::string> resolve_token(const Options& o) {
    if (!o.token.empty()) return o.token;
    if (const char* e = std::getenv("SCHEDD_TOKEN"); e && *e) return std::string(e);
    if (auto c = load(o)) {
      auto api = schedd::api::api_options_from_config(*c);
      if (api.is_ok()) return api->token;
      std::cerr << "schedctl: " << api.status().message() << "\n";
    }
    return std::nullopt;
  }

  Options o_;
  schedctl::ApiClient client_;
};

std::string bar(std::size_t used, std::size_t capacity, std::size_t width = 30) {
  const std::size_t filled = capacity == 0 ? 0 : std::min(width, used * width / capacity);
  return "[" + std::string(filled, '#') + std::string(width - filled, '.') + "]";
}

void print_stats(const json& s) {
  std::printf(
      "running %-5zu %s %zu\n", s.value("running", std::size_t{0}),
      bar(s.value("running", std::size_t{0}), s.value("runningCapacity", std::size_t{0})).c_str(),
      s.value("runningCapacity", std::size_t{0}));
  std::printf(
      "queued  %-5zu %s %zu\n", s.value("queued", std::size_t{0}),
      bar(s.value("queued", std::size_t{0}), s.value("queuedCapacity", std::size_t{0})).c_str(),
      s.value("queuedCapacity", std::size_t{0}));
  if (s.contains("lanes")) {
    for (auto& [name, l] : s["lanes"].items()) {
      std::printf(
          "  lane %-12s running %zu/%zu %s queued %zu\n", name.c_str(),
          l.value("running", std::size_t{0}), l.value("runningCapacity", std::size_t{0}),
          bar(l.value("running", std::size_t{0}), l.value("runningCapacity", std::size_t{0}), 10)
              .c_str(),
          l.value("queued", std::size_t{0}));
    }
  }
}

void print_execution_line(const json& e) {
  std::string pos = e.contains("position") ? "#" + std::to_string(e["position"].get<int>()) : "";
  std::printf("%-4s %-40s %-10s key %-16s lane %-10s p%d due %s\n", pos.c_str(),
              e.value("id", "").c_str(), e.value("status", "").c_str(), e.value("key", "").c_str(),
              e.value("lane", "").c_str(), e.value("priority", 0), e.value("due", "").c_str());
}

// `schedctl lanes workers LANE`: one line per worker, what it runs and since when; a run out
// of process adds its runner's pid, plugin, resident memory and runs served.
void print_lane_workers(const json& j) {
  std::printf("lane %s: %d workers, %d busy, %d claimed runs waiting%s\n",
              j.value("lane", "").c_str(), j.value("size", 0), j.value("busy", 0),
              j.value("waiting", 0), j.value("paused", false) ? " PAUSED" : "");
  std::printf("%-6s %-11s %-20s %s\n", "WORKER", "STATE", "SINCE", "RUNNING");
  for (const auto& w : j["workers"]) {
    const std::string state = w.value("state", "");
    const json& e = w["execution"];
    if (e.is_null()) {
      std::printf("%-6d %-11s %-20s -\n", w.value("worker", 0), state.c_str(),
                  w.value("idle_since", "").c_str());
      continue;
    }
    std::string what = e.value("id", "") + " key " + e.value("key", "");
    if (e.contains("project")) {
      what += " (ticket " + e.value("ticket", "") + " of project " + e.value("project", "") + ")";
    } else if (e.contains("helper")) {
      what += " (helper " + e.value("helper", "") + ")";
    }
    what += " attempt " + std::to_string(e.value("attempt", 1));
    if (e.value("stop_requested", false)) what += " STOPPING";
    if (w.contains("batch")) what += " +" + std::to_string(w["batch"].size()) + " in its batch";
    const std::string since = e["since"].is_string() ? e["since"].get<std::string>() : "";
    std::printf("%-6d %-11s %-20s %s\n", w.value("worker", 0), state.c_str(), since.c_str(),
                what.c_str());
    if (const json& p = e["progress"]; p.is_object()) {
      std::string line =
          p["fraction"].is_number()
              ? std::to_string(static_cast<int>(p["fraction"].get<double>() * 100 + 0.5)) + "%"
              : std::string("progress");
      if (!p.value("message", "").empty()) line += " " + p.value("message", "");
      std::printf("%-39s %s (at %s)\n", "", line.c_str(), p.value("at", "").c_str());
    }
    if (const json& r = e["runner"]; r.is_object()) {
      std::string rss = "rss ?";
      if (r["rss_bytes"].is_number()) {
        char text[64];
        std::snprintf(text, sizeof text, "rss %.1f MiB",
                      r["rss_bytes"].get<double>() / (1024.0 * 1024.0));
        rss = text;
      }
      std::printf("%-39s runner pid %lld, plugin %s %s, %s, %llu runs served\n", "",
                  static_cast<long long>(r.value("pid", 0LL)), r.value("plugin", "").c_str(),
                  r.value("version", "").c_str(), rss.c_str(),
                  static_cast<unsigned long long>(r.value("runs_served", 0ULL)));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"schedctl: control a schedd daemon over its HTTP API", "schedctl"};
  app.require_subcommand(1);
  Options o;
  app.add_option("--addr", o.addr,
                 "API address HOST:PORT (env SCHEDD_ADDR; default 127.0.0.1:7878)");
  app.add_option("--token", o.token, "Bearer token (env SCHEDD_TOKEN)");
  app.add_option("--config", o.config, "schedd config file: [api] listen and token");
  app.add_flag("--json", o.json_out, "Print the API's JSON");

  auto* status = app.add_subcommand("status", "Daemon status");

  auto* helpers = app.add_subcommand("helpers", "List helpers, or act on one");
  std::string helper_action = "list", helper_name, schedule;
  helpers->add_option("action", helper_action, "list | show | enable | disable | update | run")
      ->check(CLI::IsMember({"list", "show", "enable", "disable", "update", "run"}));
  helpers->add_option("name", helper_name, "Helper name");
  helpers->add_option("schedule", schedule,
                      "update: the schedule as a TOML inline table, e.g. '{ every = \"30m\" }', "
                      "or 'config' for the config's");
  std::string helper_priority, helper_expiry;
  helpers->add_option("--priority", helper_priority,
                      "update: priority 1 (highest) to 5, or 'config' for the config's");
  helpers->add_option("--expiry", helper_expiry,
                      "update: expiry such as 30m, or 'config' for the config's");

  auto* submit = app.add_subcommand("submit", "Submit an ad-hoc execution");
  std::string executor, helper, key, lane, id, not_before, expiry;
  int priority = 0;
  std::vector<std::string> params;
  submit->add_option("executor", executor, "Executor (or --helper)");
  submit->add_option("--helper", helper, "Run this helper's executor and params");
  submit->add_option("--key", key, "Serialization key");
  submit->add_option("--lane", lane, "Lane");
  submit->add_option("--id", id, "Execution id");
  submit->add_option("--priority", priority, "1 (highest) to 5");
  submit->add_option("--not-before", not_before, "Earliest start, RFC 3339");
  submit->add_option("--expiry", expiry, "Expire when not started within this long, e.g. 30m");
  submit->add_option("-p,--param", params, "Param k=v (repeatable)");

  auto* queue = app.add_subcommand("queue", "Queued executions, or a project's ticket queue");
  std::string project;
  queue->add_option("project", project, "Project");

  auto* cancel = app.add_subcommand("cancel", "Cancel an execution");
  std::string cancel_id;
  bool stop = false;
  cancel->add_option("id", cancel_id, "Execution id")->required();
  cancel->add_flag("--stop", stop, "Request a cooperative stop if it is running");

  auto* tickets = app.add_subcommand("tickets", "A project's tickets: list, add, cancel");
  std::string ticket_action = "list", ticket_project, ticket;
  std::vector<std::string> ticket_params;
  bool ticket_stop = false;
  std::vector<std::string> bulk_tickets;
  tickets->add_option("action", ticket_action, "list | add | bulk | cancel")
      ->check(CLI::IsMember({"list", "add", "bulk", "cancel"}));
  tickets->add_option("project", ticket_project, "Project")->required();
  tickets->add_option("ticket", bulk_tickets,
                      "Ticket (bulk: several, or none to read one per line from stdin)");
  tickets->add_option("-p,--param", ticket_params, "Param k=v (repeatable)");
  tickets->add_flag("--stop", ticket_stop, "cancel: request a stop if it is running");

  auto* clear = app.add_subcommand("clear", "Clear completed executions, or the queue");
  std::string clear_what, clear_before, clear_helper, clear_key, clear_lane;
  int clear_priority = 0;
  clear->add_option("what", clear_what, "completed | queue")
      ->required()
      ->check(CLI::IsMember({"completed", "queue"}));
  clear->add_option("--before", clear_before, "completed: only those finished before (RFC 3339)");
  clear->add_option("--helper", clear_helper, "queue: only this helper's (or ticket name's)");
  clear->add_option("--key", clear_key, "queue: only this key's (a project's tickets)");
  clear->add_option("--lane", clear_lane, "queue: only this lane's");
  clear->add_option("--priority", clear_priority, "queue: only this priority's (1-5)");

  auto* reload = app.add_subcommand(
      "reload", "Reload the daemon's config file (as SIGHUP does) and say what changed");

  auto* lanes = app.add_subcommand("lanes", "Lanes: list, scale, pause, resume, workers");
  std::string lane_action = "list", lane_name;
  int lane_workers = 0;
  lanes
      ->add_option("action", lane_action,
                   "list | scale | pause | resume | workers (what each worker of LANE runs)")
      ->check(CLI::IsMember({"list", "scale", "pause", "resume", "workers"}));
  lanes->add_option("lane", lane_name, "Lane");
  lanes->add_option("workers", lane_workers, "scale: the lane's new number of workers");

  auto* drain =
      app.add_subcommand("drain", "Stop claiming; running executions finish (the daemon stays up)");
  bool drain_wait = false;
  drain->add_flag("--wait", drain_wait, "Wait until nothing runs");
  auto* undrain = app.add_subcommand("undrain", "Claim again after a drain");

  auto* backup = app.add_subcommand(
      "backup", "Save a consistent copy of the daemon's SQLite store to FILE (a new file)");
  std::string backup_file;
  bool backup_force = false;
  backup->add_option("file", backup_file, "Where to write the copy")->required();
  backup->add_flag("--force", backup_force, "Replace FILE if it exists");

  auto* watch = app.add_subcommand("watch", "Live capacity from the stats stream");
  bool once = false;
  watch->add_flag("--once", once, "Print one snapshot and exit");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? kOk : kUsage;
  }

  Ctl ctl(o);
  auto print_json = [](const json& j) { std::cout << j.dump(2) << "\n"; };

  if (status->parsed()) {
    return ctl.run("GET", "/v1/status", "", [](const json& s) {
      std::printf("schedd %s on node %s, store %s, up %llds\n", s.value("version", "").c_str(),
                  s.value("node", "").c_str(), s.value("store", "").c_str(),
                  static_cast<long long>(s.value("uptime_seconds", 0)));
      std::printf("helpers %d (%d enabled), executors %d\n", s["helpers"].value("total", 0),
                  s["helpers"].value("enabled", 0), s.value("executors", 0));
      json stats = {{"running", s["running"]},
                    {"runningCapacity", s["capacity"]["running"]},
                    {"queued", s["queued"]},
                    {"queuedCapacity", s["capacity"]["queued"]}};
      print_stats(stats);
      for (const auto& l : s["lanes"]) {
        std::printf("  lane %-12s running %d/%d queued %d\n", l.value("name", "").c_str(),
                    l.value("running", 0), l.value("workers", 0), l.value("queued", 0));
      }
    });
  }
  if (helpers->parsed()) {
    if (helper_action != "list" && helper_name.empty()) {
      std::cerr << "schedctl: helpers " << helper_action << " needs a NAME\n";
      return kUsage;
    }
    const std::string base = "/v1/helpers/" + url_encode(helper_name);
    if (helper_action == "list") {
      return ctl.run("GET", "/v1/helpers", "", [](const json& j) {
        for (const auto& h : j["helpers"]) {
          std::printf("%-24s %-8s %-10s next %s\n", h.value("name", "").c_str(),
                      h.value("enabled", false) ? "enabled" : "disabled",
                      h.value("executor", "").c_str(),
                      h["next_due"].is_null() ? "-" : h["next_due"].get<std::string>().c_str());
        }
      });
    }
    if (helper_action == "show") return ctl.run("GET", base, "", print_json);
    if (helper_action == "enable" || helper_action == "disable") {
      return ctl.run("POST", base + "/" + helper_action, "", [&](const json& j) {
        if (helper_action == "enable") {
          std::printf("%s enabled: %d executions planned\n", helper_name.c_str(),
                      j.value("planned", 0));
        } else {
          std::printf("%s disabled: %d queued executions removed\n", helper_name.c_str(),
                      j.value("removed", 0));
        }
      });
    }
    if (helper_action == "update") {
      if (schedule.empty() && helper_priority.empty() && helper_expiry.empty()) {
        std::cerr << "schedctl: helpers update NAME [SCHEDULE] [--priority P] [--expiry D]\n";
        return kUsage;
      }
      // PATCH /v1/helpers/NAME: "config" sends null, which puts the config's value back. The
      // daemon checks the values (as the config file does) and says what is wrong.
      json body = json::object();
      if (!schedule.empty()) body["schedule"] = schedule == "config" ? json() : json(schedule);
      if (!helper_priority.empty()) {
        char* end = nullptr;
        const long p = std::strtol(helper_priority.c_str(), &end, 10);
        if (helper_priority == "config") {
          body["priority"] = nullptr;
        } else if (*end == '\0') {
          body["priority"] = p;
        } else {
          body["priority"] = helper_priority;  // refused by the daemon, naming the field
        }
      }
      if (!helper_expiry.empty()) {
        body["expiry"] = helper_expiry == "config" ? json() : json(helper_expiry);
      }
      return ctl.run("PATCH", base, body.dump(), [&](const json& j) {
        const json& st = j.contains("state") ? j["state"] : json::object();
        std::printf("%s: priority %d, expiry %s; %d executions planned; next:\n",
                    helper_name.c_str(), st.value("priority", 0),
                    st.value("expiry", std::string("-")).c_str(), j.value("planned", 0));
        for (const auto& n : j.value("next", json::array())) {
          std::printf("  %s\n", n.value("due", "").c_str());
        }
      });
    }
    return ctl.run("POST", base + "/run", "", [](const json& j) {
      std::printf("%s queued at position #%d\n", j.value("id", "").c_str(), j.value("position", 0));
    });
  }
  if (submit->parsed()) {
    json body = json::object();
    if (!executor.empty()) body["executor"] = executor;
    if (!helper.empty()) body["helper"] = helper;
    if (!key.empty()) body["key"] = key;
    if (!lane.empty()) body["lane"] = lane;
    if (!id.empty()) body["id"] = id;
    if (priority != 0) body["priority"] = priority;
    if (!not_before.empty()) body["not_before"] = not_before;
    if (!expiry.empty()) body["expiry"] = expiry;
    if (!params.empty()) {
      json p = json::object();
      for (const auto& kv : params) {
        if (!add_param(p, kv)) {
          std::cerr << "schedctl: --param \"" << kv << "\" is not k=v\n";
          return kUsage;
        }
      }
      body["params"] = p;
    }
    return ctl.run("POST", "/v1/executions", body.dump(), [](const json& j) {
      std::printf("%s queued at position #%d\n", j.value("id", "").c_str(), j.value("position", 0));
    });
  }
  if (queue->parsed()) {
    if (project.empty()) {
      return ctl.run("GET", "/v1/executions?status=queued&limit=1000", "", [](const json& j) {
        for (const auto& e : j["executions"]) print_execution_line(e);
      });
    }
    return ctl.run("GET", "/v1/projects/" + url_encode(project) + "/tickets", "",
                   [](const json& j) {
                     if (!j["running"].is_null()) {
                       std::printf("running  %s\n", j["running"].value("id", "").c_str());
                     }
                     for (const auto& e : j["queue"]) print_execution_line(e);
                   });
  }
  if (cancel->parsed()) {
    return ctl.run(
        "POST", "/v1/executions/" + url_encode(cancel_id) + "/cancel" + (stop ? "?stop=true" : ""),
        "", [&](const json& j) {
          std::printf(
              "%s: %s\n", cancel_id.c_str(),
              j.value("stop_requested", false) ? "stop requested" : j.value("status", "").c_str());
        });
  }
  if (tickets->parsed()) {
    const std::string base = "/v1/projects/" + url_encode(ticket_project) + "/tickets";
    if (ticket_action == "list") {
      return ctl.run("GET", base, "", [](const json& j) {
        if (!j["running"].is_null())
          std::printf("running  %s\n", j["running"].value("id", "").c_str());
        for (const auto& e : j["queue"]) print_execution_line(e);
      });
    }
    json ticket_param_json = json::object();
    for (const auto& kv : ticket_params) {
      if (!add_param(ticket_param_json, kv)) {
        std::cerr << "schedctl: --param \"" << kv << "\" is not k=v\n";
        return kUsage;
      }
    }
    if (ticket_action == "bulk") {
      if (bulk_tickets.empty()) {
        for (std::string line; std::getline(std::cin, line);) {
          line.erase(0, line.find_first_not_of(" \t\r"));
          line.erase(line.find_last_not_of(" \t\r") + 1);
          if (!line.empty()) bulk_tickets.push_back(line);
        }
      }
      if (bulk_tickets.empty()) {
        std::cerr << "schedctl: tickets bulk PROJECT: no tickets given\n";
        return kUsage;
      }
      json body = {{"tickets", bulk_tickets}};
      if (!ticket_params.empty()) body["params"] = ticket_param_json;
      return ctl.run("POST", base + "/bulk", body.dump(), [&](const json& j) {
        for (const auto& t : j["tickets"]) {
          std::printf("%-24s %s #%d\n", t.value("id", "").c_str(),
                      t.value("created", false) ? "queued at" : "already queued at",
                      t.value("position", 0));
        }
        std::printf("%d tickets queued\n", j.value("count", 0));
      });
    }
    if (bulk_tickets.size() != 1) {
      std::cerr << "schedctl: tickets " << ticket_action << " PROJECT TICKET\n";
      return kUsage;
    }
    ticket = bulk_tickets.front();
    if (ticket_action == "add") {
      json body = {{"ticket", ticket}};
      if (!ticket_params.empty()) body["params"] = ticket_param_json;
      return ctl.run("POST", base, body.dump(),
                     [](const json& j) { std::printf("%s\n", j.value("message", "").c_str()); });
    }
    return ctl.run("DELETE", base + "/" + url_encode(ticket) + (ticket_stop ? "?stop=true" : ""),
                   "", [&](const json& j) {
                     std::printf("%s: %s\n", ticket.c_str(),
                                 j.value("stop_requested", false) ? "stop requested"
                                                                  : j.value("status", "").c_str());
                   });
  }
  if (clear->parsed()) {
    if (clear_what == "completed") {
      return ctl.run(
          "DELETE",
          "/v1/history" + (clear_before.empty() ? "" : "?before=" + url_encode(clear_before)), "",
          [](const json& j) {
            std::printf("%d finished executions removed\n", j.value("removed", 0));
          });
    }
    json body = json::object();
    if (!clear_helper.empty()) body["helper"] = clear_helper;
    if (!clear_key.empty()) body["key"] = clear_key;
    if (!clear_lane.empty()) body["lane"] = clear_lane;
    if (clear_priority != 0) body["priority"] = clear_priority;
    return ctl.run("POST", "/v1/executions/cancel", body.dump(), [](const json& j) {
      std::printf("%d queued executions cancelled\n", j.value("cancelled", 0));
    });
  }
  if (reload->parsed()) {
    return ctl.run("POST", "/v1/system/reload", "", [](const json& j) {
      const auto changes = j.value("changes", json::array());
      const auto restart = j.value("needs_restart", json::array());
      std::printf("reloaded: %zu changes\n", changes.size());
      for (const auto& c : changes) std::printf("  %s\n", c.get<std::string>().c_str());
      if (!restart.empty()) std::printf("needs a restart to change:\n");
      for (const auto& r : restart) std::printf("  %s\n", r.get<std::string>().c_str());
    });
  }
  if (lanes->parsed()) {
    auto print_lane = [](const json& l) {
      // While scaling down, the extra workers leave as their runs end.
      const int threads = l.value("threads", 0);
      const std::string leaving =
          threads > l.value("workers", 0) ? " (" + std::to_string(threads) + " threads)" : "";
      std::printf("%-14s workers %d%s running %d queued %d%s\n", l.value("name", "").c_str(),
                  l.value("workers", 0), leaving.c_str(), l.value("running", 0),
                  l.value("queued", 0), l.value("paused", false) ? " PAUSED" : "");
    };
    if (lane_action == "list") {
      return ctl.run("GET", "/v1/lanes", "", [&](const json& j) {
        for (const auto& l : j["lanes"]) print_lane(l);
        if (j["drain"].value("draining", false)) {
          std::printf("draining: %s\n",
                      j["drain"].value("drained", false) ? "drained" : "runs left");
        }
      });
    }
    if (lane_action == "workers" && !lane_name.empty()) {
      return ctl.run("GET", "/v1/lanes/" + url_encode(lane_name) + "/workers", "",
                     print_lane_workers);
    }
    if (lane_name.empty() || (lane_action == "scale" && lane_workers <= 0)) {
      std::cerr << "schedctl: lanes " << lane_action << " LANE"
                << (lane_action == "scale" ? " WORKERS" : "") << "\n";
      return kUsage;
    }
    const std::string base = "/v1/lanes/" + url_encode(lane_name) + "/" + lane_action;
    const std::string body =
        lane_action == "scale" ? json{{"workers", lane_workers}}.dump() : std::string();
    return ctl.run("POST", base, body, print_lane);
  }
  if (drain->parsed() || undrain->parsed()) {
    auto print_drain = [](const json& j) {
      std::printf("%s, %d running\n",
                  !j.value("draining", false) ? "claiming"
                  : j.value("drained", false) ? "drained"
                                              : "draining",
                  j.value("running", 0));
    };
    int rc = ctl.run("POST", drain->parsed() ? "/v1/system/drain" : "/v1/system/undrain", "",
                     print_drain);
    if (rc != kOk || !drain_wait) return rc;
    for (;;) {
      HttpResult r = ctl.client().call("GET", "/v1/system/drain", "");
      json j = json::parse(r.body, nullptr, false);
      if (r.status != 200 || j.is_discarded()) {
        std::cerr << "schedctl: drain: " << (r.status == 0 ? r.error : r.body) << "\n";
        return r.status == 0 ? kUnreachable : kRefused;
      }
      if (j.value("drained", false) || !j.value("draining", false)) {
        if (!ctl.json_out()) print_drain(j);
        return kOk;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  }
  if (backup->parsed()) return save_backup(ctl.client(), backup_file, backup_force);

  if (watch->parsed()) {
    std::string error = ctl.client().stream(
        "/v1/stats/stream", [&](const std::string& name, const std::string& data) {
          if (name != "stats") return true;
          json s = json::parse(data, nullptr, false);
          if (s.is_discarded()) return true;
          if (ctl.json_out()) {
            std::cout << s.dump() << std::endl;
          } else {
            if (!once) std::cout << "\x1b[H\x1b[2J";  // clear the terminal
            print_stats(s);
            std::cout << std::flush;
          }
          return !once;
        });
    if (!error.empty()) {
      std::cerr << "schedctl: " << error << "\n";
      return error.rfind("HTTP ", 0) == 0 ? kRefused : kUnreachable;
    }
    return kOk;
  }
  return kUsage;
}
