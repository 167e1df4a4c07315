// The shipped alert rules and Grafana dashboard (contrib/monitoring/, docs/monitoring.md) name
// only metrics that GET /metrics really has: every metric in a rule expression or a panel
// query is found in live scrapes of a SQLite daemon and a Redis daemon that each ran an
// execution. `promtool check rules` and `promtool test rules` run as the ctest
// monitoring_promtool (scripts/check-monitoring.sh).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "tests/testing/daemon_process.h"
#include "tests/testing/http_client.h"
#include "tests/testing/prom_text.h"
#include "tests/testing/redis_server.h"
#include "tests/testing/temp_dir.h"

namespace schedd::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

const std::filesystem::path kDir = std::filesystem::path(SCHEDD_SOURCE_DIR) / "contrib/monitoring";

// The metric names a PromQL expression reads: identifiers that are not functions or
// aggregations (followed by "("), keywords, label names (inside {...} or a by/without/on/
// ignoring/group_left/group_right list), durations (inside [...]), strings, numbers or
// Grafana variables ($instance, $__rate_interval).
std::set<std::string> promql_metric_names(const std::string& expr) {
  static const std::set<std::string> kKeywords = {"and",      "or",         "unless",     "bool",
                                                  "offset",   "by",         "without",    "on",
                                                  "ignoring", "group_left", "group_right"};
  static const std::set<std::string> kAggregations = {
      "sum",    "avg",  "min",     "max",      "count",        "stddev",
      "stdvar", "topk", "bottomk", "quantile", "count_values", "group"};
  static const std::set<std::string> kLabelLists = {"by",       "without",    "on",
                                                    "ignoring", "group_left", "group_right"};
  auto ident_start = [](char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
  };
  auto ident_char = [&](char c) {
    return ident_start(c) || std::isdigit(static_cast<unsigned char>(c));
  };
  auto skip_space = [&](std::size_t i) {
    while (i < expr.size() && std::isspace(static_cast<unsigned char>(expr[i]))) ++i;
    return i;
  };
  auto skip_until = [&](std::size_t i, char close) {  // i at the opening char
    ++i;
    while (i < expr.size() && expr[i] != close) {
      if (expr[i] == '"' || expr[i] == '\'' || expr[i] == '`') {
        const char q = expr[i++];
        while (i < expr.size() && expr[i] != q) i += expr[i] == '\\' ? 2 : 1;
      }
      ++i;
    }
    return i + 1;
  };
  std::set<std::string> out;
  std::size_t i = 0;
  while (i < expr.size()) {
    const char c = expr[i];
    if (c == '"' || c == '\'' || c == '`') {
      ++i;
      while (i < expr.size() && expr[i] != c) i += expr[i] == '\\' ? 2 : 1;
      ++i;
    } else if (c == '{') {
      i = skip_until(i, '}');
    } else if (c == '[') {
      i = skip_until(i, ']');
    } else if (c == '$') {
      ++i;
      while (i < expr.size() && ident_char(expr[i])) ++i;
    } else if (std::isdigit(static_cast<unsigned char>(c)) ||
               (c == '.' && i + 1 < expr.size() &&
                std::isdigit(static_cast<unsigned char>(expr[i + 1])))) {
      while (i < expr.size() && (ident_char(expr[i]) || expr[i] == '.')) ++i;  // 1e9, 0.5, 5m
    } else if (ident_start(c)) {
      std::size_t end = i;
      while (end < expr.size() && ident_char(expr[end])) ++end;
      const std::string word = expr.substr(i, end - i);
      const std::size_t next = skip_space(end);
      i = end;
      if (kLabelLists.count(word)) {
        if (next < expr.size() && expr[next] == '(') i = skip_until(next, ')');
      } else if (kKeywords.count(word)) {
      } else if (next < expr.size() && expr[next] == '(') {
        // a function or an aggregation
      } else if (kAggregations.count(word) &&
                 (expr.compare(next, 2, "by") == 0 || expr.compare(next, 7, "without") == 0)) {
        // sum by (x) (...)
      } else {
        out.insert(word);
      }
    } else {
      ++i;
    }
  }
  return out;
}

TEST(MonitoringTest, PromqlMetricNamesFindsMetricsNotFunctionsLabelsOrVariables) {
  EXPECT_THAT(
      promql_metric_names(
          "histogram_quantile(0.99, sum by (instance, le) "
          "(rate(schedd_start_lag_seconds_bucket{instance=~\"$instance\",le!=\"x_y\"}[5m]))) > 30"),
      ElementsAre("schedd_start_lag_seconds_bucket"));
  EXPECT_THAT(
      promql_metric_names("schedd_running >= schedd_workers and on(lane) "
                          "delta(schedd_queued[15m]) > 0 unless schedd_lane_paused == 1"),
      ElementsAre("schedd_lane_paused", "schedd_queued", "schedd_running", "schedd_workers"));
  EXPECT_THAT(
      promql_metric_names("sum without (code) (x_total) / ignoring(a) group_left(b) y * 1e9"),
      ElementsAre("x_total", "y"));
  EXPECT_THAT(promql_metric_names("time() - process_start_time_seconds{job='a b'} offset 5m"),
              ElementsAre("process_start_time_seconds"));
  EXPECT_THAT(promql_metric_names("vector(1) + 0.5"), IsEmpty());
}

struct Named {
  std::string where;  // "rule ScheddDown", "panel Ready"
  std::string metric;
};

std::vector<Named> names_in_rules() {
  std::vector<Named> out;
  YAML::Node doc = YAML::LoadFile((kDir / "schedd-alerts.yml").string());
  for (const auto& group : doc["groups"]) {
    for (const auto& rule : group["rules"]) {
      const std::string what =
          rule["alert"] ? "rule " + rule["alert"].as<std::string>() : "recording rule";
      for (const auto& m : promql_metric_names(rule["expr"].as<std::string>())) {
        out.push_back({what, m});
      }
    }
  }
  return out;
}

void collect_panels(const nlohmann::json& panels, std::vector<Named>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_panels(p["panels"], out);
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"]) {
      for (const auto& m : promql_metric_names(t.value("expr", ""))) {
        out.push_back({"panel " + p.value("title", "?"), m});
      }
    }
  }
}

std::vector<Named> names_in_dashboard() {
  std::ifstream in(kDir / "schedd-dashboard.json");
  nlohmann::json dash = nlohmann::json::parse(in);
  std::vector<Named> out;
  collect_panels(dash["panels"], out);
  // The instance variable: label_values(METRIC, instance).
  for (const auto& v : dash["templating"]["list"]) {
    const std::string def = v.value("definition", "");
    if (def.starts_with("label_values(")) {
      const std::string inner = def.substr(13, def.find(',') - 13);
      out.push_back({"variable " + v.value("name", "?"), inner});
    }
  }
  return out;
}

std::filesystem::path monitoring_config(const TempDir& dir, const std::string& store) {
  return dir.write("schedd.toml", std::string("[daemon]\nplugin_dir = \"") + SCHEDD_PLUGIN_DIR +
                                      "\"\ndata_dir = \"" + dir.path().string() + "\"\nstore = \"" +
                                      store +
                                      "\"\n[api]\nlisten = \"127.0.0.1:0\"\n"
                                      "[helpers.tick]\nexecutor = \"noop\"\n"
                                      "schedule = { every = \"1h\" }\n");
}

// The sample names of a scrape of a daemon on `store` that ran one noop through the API.
std::set<std::string> live_names(const std::string& store) {
  TempDir dir;
  DaemonProcess daemon(monitoring_config(dir, store));
  EXPECT_TRUE(daemon.wait_ready()) << daemon.log();
  HttpClient c("127.0.0.1", daemon.port());
  auto r = c.post("/v1/executions", R"({"executor":"noop"})");
  EXPECT_EQ(r.status, 201) << r.body;
  const std::string id = nlohmann::json::parse(r.body).value("id", "");
  for (int i = 0; i < 2000; ++i) {
    if (c.get("/v1/executions/" + id).body.find("\"succeeded\"") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  PromText p = PromText::parse(c.get("/metrics").body);
  EXPECT_TRUE(p.ok()) << p.error_text();
  EXPECT_EQ(daemon.stop().exit_code, 0);
  return p.sample_names();
}

TEST(MonitoringTest, EveryMetricInTheRulesAndTheDashboardIsInALiveScrape) {
  std::set<std::string> live = live_names("sqlite:schedd.db");
  RedisServer redis;
  for (const auto& n : live_names(redis.url())) live.insert(n);
  // Made by Prometheus itself for every target, not by the daemon.
  live.insert("up");

  const std::vector<Named> rules = names_in_rules();
  const std::vector<Named> panels = names_in_dashboard();
  EXPECT_GE(rules.size(), 10u);
  EXPECT_GE(panels.size(), 30u);
  for (const auto& list : {rules, panels}) {
    for (const auto& n : list) {
      EXPECT_TRUE(live.count(n.metric))
          << n.where << " uses " << n.metric << ", which no live scrape has";
    }
  }
}

TEST(MonitoringTest, EveryAlertHasAnExplanationInDocsMonitoring) {
  std::ifstream in(std::filesystem::path(SCHEDD_SOURCE_DIR) / "docs/monitoring.md");
  const std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  YAML::Node rules = YAML::LoadFile((kDir / "schedd-alerts.yml").string());
  std::size_t alerts = 0;
  for (const auto& group : rules["groups"]) {
    for (const auto& rule : group["rules"]) {
      if (!rule["alert"]) continue;
      ++alerts;
      const std::string name = rule["alert"].as<std::string>();
      EXPECT_NE(doc.find("### " + name + "\n"), std::string::npos)
          << "docs/monitoring.md has no section \"### " << name << "\"";
      std::string anchor = name;
      for (char& ch : anchor) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_EQ(rule["annotations"]["runbook"].as<std::string>(), "docs/monitoring.md#" + anchor);
    }
  }
  EXPECT_EQ(alerts, 10u);
}

}  // namespace
}  // namespace schedd::testing
