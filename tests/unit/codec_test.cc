// The durable stores' template codec (core/store/codec.h): a body no schedd writes is a
// malformed body whose error names the field, never a template run with nonsense (priority
// 99, a negative timeout, an overlap policy or origin that does not exist). The SQLite store
// refuses such a file naming the template row and the field.
#include "core/store/codec.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace schedd {
namespace {

using Json = nlohmann::json;

std::string good_body() {
  ExecTemplate t;
  t.origin = ExecOrigin::kTicket;
  t.name = "T-1";
  t.executor = "noop";
  t.key = "proj";
  t.lane = "default";
  t.priority = 2;
  t.expiry = std::chrono::milliseconds(60000);
  t.timeout = std::chrono::milliseconds(5000);
  t.max_attempts = 3;
  t.retry_delays = {std::chrono::milliseconds(0), std::chrono::milliseconds(1000)};
  t.overlap = OverlapPolicy::kSkip;
  t.params = {{"steps", ParamValue::integer(7)}};
  return codec::template_to_body(t);
}

// The error template_from_body throws for `body`, "" if it decodes.
std::string decode_error(const std::string& body) {
  try {
    codec::template_from_body(body);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(CodecTest, AGoodTemplateRoundTrips) {
  const std::string body = good_body();
  auto t = codec::template_from_body(body);
  EXPECT_EQ(t->priority, 2);
  EXPECT_EQ(t->overlap, OverlapPolicy::kSkip);
  EXPECT_EQ(t->max_attempts, 3u);
  EXPECT_EQ(codec::template_to_body(*t), body);
}

struct BadField {
  const char* field;
  Json value;
  const char* error;  // a substring of the decode error
};

TEST(CodecTest, NonsenseTemplatesAreRefusedNamingTheField) {
  const std::vector<BadField> cases = {
      {"priority", 99, "field priority: 99 is out of range 1-5"},
      {"priority", 0, "field priority: 0 is out of range 1-5"},
      {"priority", "high", "field priority: expected an integer, got string"},
      {"origin", 7, "field origin: 7 is out of range 1-3"},
      {"overlap", -1, "field overlap: -1 is out of range 0-3"},
      {"overlap", 4, "field overlap: 4 is out of range 0-3"},
      {"max_attempts", 0, "field max_attempts: 0 is out of range 1-"},
      {"max_attempts", -3, "field max_attempts: -3 is out of range 1-"},
      {"max_attempts", 5000000000LL, "field max_attempts: 5000000000 is out of range 1-"},
      {"expiry_ms", 0, "field expiry_ms: 0 is out of range 1-"},
      {"timeout_ms", -5, "field timeout_ms: -5 is out of range 1-"},
      {"retry_delays_ms", Json::array({1000, -1}), "field retry_delays_ms: -1 is out of range"},
      {"retry_delays_ms", 5, "field retry_delays_ms: expected an array"},
      {"name", 12, "field name: expected a string, got number"},
      {"lane", nullptr, "field lane: expected a string, got null"},
      {"params", Json::array({Json::array({"x", 99, 1})}), "field params: unknown param type 99"},
  };
  for (const auto& c : cases) {
    Json j = Json::parse(good_body());
    j[c.field] = c.value;
    const std::string error = decode_error(j.dump());
    EXPECT_NE(error.find(c.error), std::string::npos)
        << c.field << " = " << c.value.dump() << ": got \"" << error << "\"";
  }
  Json missing = Json::parse(good_body());
  missing.erase("executor");
  EXPECT_EQ(decode_error(missing.dump()), "field executor is missing");
  EXPECT_EQ(decode_error("[1,2]"), "expected a JSON object, got array");
}

// A store file whose template row says priority 99 is refused at open, naming the file, the
// row and the field; nothing is loaded with it.
TEST(CodecTest, AStoreFileWithANonsenseTemplateIsRefusedNamingTheField) {
  testing::TempDir dir;
  const auto path = dir / "schedd.db";
  {
    auto store = SqliteStore::open(path);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    auto t = std::make_shared<ExecTemplate>();
    t->name = "job";
    t->executor = "noop";
    t->key = "job";
    t->lane = "default";
    Execution e;
    e.id = "job@1";
    e.spec = t;
    e.due = e.not_before = TimePoint(std::chrono::seconds(1767225600));
    ASSERT_TRUE((*store)->plan({e}, e.due).is_ok());
    ASSERT_TRUE((*store)->flush());
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE templates SET body = json_set(body, '$.priority', 99)",
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto again = SqliteStore::open(path);
  ASSERT_FALSE(again.is_ok());
  const std::string message = again.status().message();
  EXPECT_NE(message.find(path.string()), std::string::npos) << message;
  EXPECT_NE(message.find("is malformed: field priority: 99 is out of range 1-5"), std::string::npos)
      << message;
}

}  // namespace
}  // namespace schedd
