// Redis ingest (issue #19): submissions in one script call per batch with one wake-up, tickets
// stored against a template shape their project shares (name and params in the execution
// hash), and executions written in the shape before that still read, claimed and listed.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/store/codec.h"
#include "core/store/redis_client.h"
#include "core/store/redis_store.h"
#include "tests/store_conformance/store_conformance.h"
#include "tests/testing/redis_server.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;

RedisServer& server() {
  static RedisServer s;
  return s;
}

class RedisIngestTest : public ::testing::Test {
 protected:
  // A store on this test's namespace as daemon `node_id`: no lease lapses, no rescans.
  RedisOptions options(const std::string& node_id) const {
    RedisOptions o;
    o.address.port = server().port();
    o.ns = ns_;
    o.node_id = node_id;
    o.lease = std::chrono::hours(24);
    o.rescan = 0ms;
    return o;
  }
  void SetUp() override {
    static std::atomic<int> n{0};
    ns_ = "ingest" + std::to_string(getpid()) + "-" + std::to_string(n++);
    auto s = RedisStore::open(options("node-1"));
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s).value();
    RedisConnectOptions co;
    co.address.port = server().port();
    auto c = RedisClient::connect(co);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    control_ = std::move(c).value();
  }

  // Calls of `command` (evalsha, publish, ...) Redis counted so far, scripts' calls included.
  long long calls(const std::string& command) {
    auto r = control_->call({"INFO", "commandstats"});
    EXPECT_TRUE(r.is_ok());
    const std::string tag = "cmdstat_" + command + ":calls=";
    auto at = r->str.find(tag);
    return at == std::string::npos ? 0 : std::stoll(r->str.substr(at + tag.size()));
  }
  RedisValue run(RedisArgv argv) {
    auto r = control_->call(std::move(argv));
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : RedisValue{};
  }
  std::string key(const std::string& k) const { return "schedd:" + ns_ + ":" + k; }

  std::string ns_;
  std::unique_ptr<RedisStore> store_;
  std::unique_ptr<RedisClient> control_;
};

// A ticket of `project` named `name` with one string param, as the API's prepare() makes it:
// a template object of its own.
Execution ticket(const std::string& project, const std::string& name, const std::string& param,
                 TimePoint due) {
  SpecOptions so;
  so.key = project;
  so.origin = ExecOrigin::kTicket;
  auto t = std::make_shared<ExecTemplate>(*make_spec(name, so));
  t->params = {{"what", ParamValue::string(param)}};
  return make_exec(std::move(t), due, project + "/" + name);
}

TEST_F(RedisIngestTest, ABulkOfSubmissionsIsOneScriptCallAndOneWakeUpPerChunkOf250) {
  std::vector<Execution> batch;
  for (int i = 0; i < 2500; ++i) {
    batch.push_back(ticket("p" + std::to_string(i % 3), "t" + std::to_string(i),
                           "v" + std::to_string(i), kT0 + 1h));
  }
  const long long evals = calls("evalsha"), publishes = calls("publish");
  auto results = store_->submit_many(std::move(batch), kT0, 1000000);
  EXPECT_EQ(calls("evalsha") - evals, 10);
  EXPECT_EQ(calls("publish") - publishes, 10);
  ASSERT_EQ(results.size(), 2500u);
  std::map<std::string, std::size_t> position;
  uint64_t last_seq = 0;
  for (int i = 0; i < 2500; ++i) {
    ASSERT_TRUE(results[i].is_ok()) << i << ": " << results[i].status().to_string();
    const auto& [e, pos] = *results[i];
    EXPECT_EQ(e.id, "p" + std::to_string(i % 3) + "/t" + std::to_string(i));
    EXPECT_GT(e.seq, last_seq);
    last_seq = e.seq;
    EXPECT_EQ(pos, ++position[e.key()]) << e.id;
    EXPECT_EQ(e.status, ExecStatus::kQueued);
  }
  // As stored: the returned execution is what get() reads back.
  auto got = store_->get("p1/t1300");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->seq, results[1300]->first.seq);
  EXPECT_EQ(got->created, kT0);
  EXPECT_EQ(got->spec->name, "t1300");
  EXPECT_EQ(store_->position("p1/t1300"), results[1300]->second);
}

TEST_F(RedisIngestTest, EachSubmissionOfABatchGetsItsOwnAnswer) {
  SpecOptions so;
  so.origin = ExecOrigin::kAdhoc;
  auto spec = make_spec("job", so);
  ASSERT_TRUE(store_->submit(make_exec(spec, kT0, "taken"), kT0, 100).is_ok());
  std::vector<Execution> batch;
  batch.push_back(make_exec(spec, kT0, "a"));
  batch.push_back(make_exec(spec, kT0, "taken"));  // queued already
  batch.push_back(make_exec(spec, kT0, "b"));
  batch.push_back(make_exec(spec, kT0 + 1h, "later"));  // not due: does not count
  batch.push_back(make_exec(spec, kT0, "c"));           // the 4th due: capacity reached
  batch.push_back(make_exec(spec, kT0, "d"));
  batch.push_back(make_exec(spec, kT0, "e"));
  batch.back().id.clear();
  auto r = store_->submit_many(std::move(batch), kT0, 4);
  ASSERT_EQ(r.size(), 7u);
  EXPECT_TRUE(r[0].is_ok()) << r[0].status().to_string();
  EXPECT_EQ(r[1].status().code(), StatusCode::kAlreadyExists) << r[1].status().to_string();
  EXPECT_TRUE(r[2].is_ok()) << r[2].status().to_string();
  EXPECT_TRUE(r[3].is_ok()) << r[3].status().to_string();
  EXPECT_TRUE(r[4].is_ok()) << r[4].status().to_string();
  EXPECT_EQ(r[5].status().code(), StatusCode::kResourceExhausted) << r[5].status().to_string();
  EXPECT_EQ(r[6].status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(store_->get("d").has_value());
  EXPECT_EQ(sorted(ids_of(store_->key_queue("job"))),
            (std::vector<std::string>{"a", "b", "c", "later", "taken"}));
}

TEST_F(RedisIngestTest, ConcurrentSingleSubmissionsEachGetTheirOwnReply) {
  constexpr int kThreads = 8, kEach = 40;
  const long long evals = calls("evalsha");
  std::vector<std::thread> threads;
  std::vector<std::vector<std::pair<std::string, std::size_t>>> got(kThreads);
  std::atomic<int> failed{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        auto r = store_->submit(ticket("p" + std::to_string(t), "t" + std::to_string(i),
                                       std::to_string(t * 1000 + i), kT0 + 1h),
                                kT0, 1000000);
        if (!r.is_ok()) {
          ++failed;
          continue;
        }
        got[t].emplace_back(r->first.id, r->second);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed.load(), 0);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(got[t].size(), static_cast<std::size_t>(kEach));
    for (int i = 0; i < kEach; ++i) {
      // Its own id and its place in its own project's queue: no reply went to another caller.
      EXPECT_EQ(got[t][i].first, "p" + std::to_string(t) + "/t" + std::to_string(i));
      EXPECT_EQ(got[t][i].second, static_cast<std::size_t>(i + 1));
    }
    auto e = store_->get("p" + std::to_string(t) + "/t7");
    ASSERT_TRUE(e.has_value());
    ASSERT_EQ(e->spec->params.size(), 1u);
    EXPECT_EQ(e->spec->params[0].second, ParamValue::string(std::to_string(t * 1000 + 7)));
  }
  // Merged while a round trip was out: never more script calls than submissions.
  EXPECT_LE(calls("evalsha") - evals, kThreads * kEach);
}

TEST_F(RedisIngestTest, TicketsOfAProjectShareOneTemplateAndKeepTheirNameAndParams) {
  ASSERT_TRUE(store_->submit(ticket("proj", "first", "one", kT0), kT0, 100).is_ok());
  ASSERT_TRUE(store_->submit(ticket("proj", "second", "two", kT0), kT0, 100).is_ok());
  const RedisValue a = run({"HGET", key("e:proj/first"), "tpl"});
  const RedisValue b = run({"HGET", key("e:proj/second"), "tpl"});
  EXPECT_EQ(a.str, b.str);
  EXPECT_EQ(a.str.substr(0, 1), "s") << a.str;
  EXPECT_EQ(run({"KEYS", key("t:*")}).elements.size(), 1u);
  // Fields empty until a run starts are not written.
  EXPECT_EQ(run({"HEXISTS", key("e:proj/first"), "out"}).integer, 0);
  for (const char* name : {"first", "second"}) {
    auto e = store_->get(std::string("proj/") + name);
    ASSERT_TRUE(e.has_value()) << name;
    EXPECT_EQ(e->spec->name, name);
    EXPECT_EQ(e->spec->key, "proj");
    EXPECT_EQ(e->spec->origin, ExecOrigin::kTicket);
    ASSERT_EQ(e->spec->params.size(), 1u);
    EXPECT_EQ(e->spec->params[0].second,
              ParamValue::string(std::string(name) == "first" ? "one" : "two"));
  }
  ExecutionFilter f;
  f.name = "second";
  EXPECT_EQ(ids_of(store_->list(f)), std::vector<std::string>{"proj/second"});
  // A claim hands the run its own name and params.
  auto c = store_->claim("default", 1, kT0, "node-1");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_EQ(c->claimed.size(), 1u);
  EXPECT_EQ(c->claimed[0].id, "proj/first");
  EXPECT_EQ(c->claimed[0].spec->name, "first");
  ASSERT_EQ(c->claimed[0].spec->params.size(), 1u);
  EXPECT_EQ(c->claimed[0].spec->params[0].second, ParamValue::string("one"));
}

// An execution's key is read from its hash: a shape without a key (which a later version may
// write, one for every project) reads, lists and claims each execution with its own key, on a
// daemon that has cached nothing. Shapes are written with the key for now, so that a schedd
// from before, which reads the key from the shape, runs beside this one in a rolling upgrade.
TEST_F(RedisIngestTest, AShapeWithoutAKeyGivesEachExecutionTheKeyOfItsHash) {
  std::vector<Execution> batch;
  for (const char* project : {"alpha", "beta", "gamma"}) {
    batch.push_back(ticket(project, "build", project, kT0));
  }
  for (const auto& r : store_->submit_many(batch, kT0, 100)) ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(run({"KEYS", key("t:*")}).elements.size(), 3u);  // one shape per project
  auto keyless = std::make_shared<ExecTemplate>(*batch[0].spec);
  keyless->name.clear();
  keyless->params.clear();
  keyless->key.clear();
  run({"SET", key("t:s00000000000000bb"), codec::template_to_body(*keyless)});
  for (const char* project : {"alpha", "beta", "gamma"}) {
    run({"HSET", key("e:" + std::string(project) + "/build"), "tpl", "s00000000000000bb"});
  }
  auto fresh = RedisStore::open(options("node-2"));
  ASSERT_TRUE(fresh.is_ok()) << fresh.status().to_string();
  for (const char* project : {"alpha", "beta", "gamma"}) {
    auto e = (*fresh)->get(std::string(project) + "/build");
    ASSERT_TRUE(e.has_value()) << project;
    EXPECT_EQ(e->spec->key, project);
    EXPECT_EQ(e->spec->name, "build");
    ExecutionFilter f;
    f.key = project;
    EXPECT_EQ(ids_of((*fresh)->list(f)), std::vector<std::string>{std::string(project) + "/build"});
  }
  auto c = (*fresh)->claim("default", 3, kT0, "node-2");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_EQ(c->claimed.size(), 3u);
  for (const auto& e : c->claimed) {
    EXPECT_EQ(e.spec->key + "/build", e.id);
    ASSERT_EQ(e.spec->params.size(), 1u);
    EXPECT_EQ(e.spec->params[0].second, ParamValue::string(e.spec->key));
  }
}

// An execution written by a schedd before template shapes (a whole template of its own, every
// field written) reads, lists, claims and completes as before.
TEST_F(RedisIngestTest, AnExecutionInTheShapeBeforeReadsAndRuns) {
  Execution e = ticket("proj", "old", "legacy", kT0);
  ASSERT_TRUE(store_->submit(e, kT0, 100).is_ok());
  // Rewrite it as the old submit script wrote it.
  const std::string tid = "00000000000000aa";
  run({"SET", key("t:" + tid), codec::template_to_body(*e.spec)});
  run({"HSET", key("e:proj/old"), "tpl", tid, "sa", "", "fi", "", "msg", "", "out", "", "node",
       ""});
  run({"HDEL", key("e:proj/old"), "pa"});
  run({"HSET", key("e:proj/old"), "name", "not-the-template's"});  // read from the template
  // A fresh store: no template cached.
  auto fresh = RedisStore::open(options("node-2"));
  ASSERT_TRUE(fresh.is_ok()) << fresh.status().to_string();
  auto got = (*fresh)->get("proj/old");
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->spec->name, "old");
  ASSERT_EQ(got->spec->params.size(), 1u);
  EXPECT_EQ(got->spec->params[0].second, ParamValue::string("legacy"));
  EXPECT_EQ((*fresh)->position("proj/old"), 1u);
  ExecutionFilter f;
  f.key = "proj";
  EXPECT_EQ(ids_of((*fresh)->list(f)), std::vector<std::string>{"proj/old"});
  auto c = (*fresh)->claim("default", 1, kT0, "node-2");
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_EQ(c->claimed.size(), 1u);
  EXPECT_EQ(c->claimed[0].spec->name, "old");
  ASSERT_EQ(c->claimed[0].spec->params.size(), 1u);
  EXPECT_EQ(c->claimed[0].spec->params[0].second, ParamValue::string("legacy"));
  Completion done;
  done.status = ExecStatus::kSucceeded;
  done.finished = kT0 + 1s;
  ASSERT_TRUE((*fresh)->complete("proj/old", c->claimed[0].fence, done).is_ok());
  EXPECT_EQ((*fresh)->get("proj/old")->status, ExecStatus::kSucceeded);
}

}  // namespace
}  // namespace schedd::testing
