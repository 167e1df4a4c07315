// The Store conformance suite: every Store implementation must pass the same tests, written
// against the Store interface only, with explicit time points (no clock, no sleeps).
//
// The tests themselves are in store_conformance_test.cc (compiled once into schedd_tests);
// an implementation joins with one line in its own *_test.cc:
//
//   INSTANTIATE_TEST_SUITE_P(Memory, StoreConformanceTest,
//                            ::testing::Values(StoreFactory([] {
//                              return std::make_unique<MemoryStore>();
//                            })));
//
// The factory is called once per test and must return an empty store. Not thread-safe; one
// fixture per test, as GoogleTest does.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/store/execution.h"
#include "core/store/store.h"

namespace schedd::testing {

using StoreFactory = std::function<std::unique_ptr<Store>()>;

// A store whose describe() starts with this is closed and re-opened from disk after every
// change (tests/store_conformance/sqlite_store_test.cc). It forgets what a restart forgets by
// design: that a replace was already reported for a run (the run is interrupted by a restart).
inline constexpr std::string_view kReopenedStorePrefix = "reopened:";

// 2026-01-01T00:00:00Z: the base instant of every conformance test.
inline const TimePoint kT0{std::chrono::seconds(1767225600)};

// kT0 + `offset`.
inline TimePoint at(std::chrono::milliseconds offset) { return kT0 + offset; }

// What a test varies in an execution template; the rest keeps ExecTemplate's defaults.
struct SpecOptions {
  std::string key = "";  // default: the name (the helper default); "-" for an empty key (allow)
  std::string lane = "default";
  int priority = 3;
  std::optional<std::chrono::milliseconds> expiry = std::nullopt;
  uint32_t max_attempts = 1;
  OverlapPolicy overlap = OverlapPolicy::kQueue;
  ExecOrigin origin = ExecOrigin::kHelper;
};

inline std::shared_ptr<const ExecTemplate> make_spec(const std::string& name,
                                                     const SpecOptions& o = {}) {
  auto t = std::make_shared<ExecTemplate>();
  t->origin = o.origin;
  t->name = name;
  t->executor = "noop";
  t->key = o.key == "-" ? "" : (o.key.empty() ? name : o.key);
  if (o.overlap == OverlapPolicy::kAllow) t->key.clear();
  t->lane = o.lane;
  t->priority = o.priority;
  t->expiry = o.expiry;
  t->max_attempts = o.max_attempts;
  t->overlap = o.overlap;
  return t;
}

// A queued execution of `spec` due at `due`; its id is the planned id unless given.
inline Execution make_exec(std::shared_ptr<const ExecTemplate> spec, TimePoint due,
                           std::string id = "") {
  Execution e;
  e.id = id.empty() ? planned_id(spec->name, due) : std::move(id);
  e.spec = std::move(spec);
  e.due = due;
  e.not_before = due;
  return e;
}

inline std::vector<std::string> ids_of(const std::vector<Execution>& executions) {
  std::vector<std::string> ids;
  for (const auto& e : executions) ids.push_back(e.id);
  return ids;
}

inline std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam()();
    ASSERT_NE(store_, nullptr);
  }

  Store& store() { return *store_; }

  // Plans `executions` and expects them all created.
  void plan(std::vector<Execution> executions, TimePoint now = kT0) {
    std::size_t n = executions.size();
    auto created = store_->plan(std::move(executions), now);
    ASSERT_TRUE(created.is_ok()) << created.status().to_string();
    EXPECT_EQ(*created, n);
  }

  ClaimResult claim(std::string_view lane, std::size_t max, TimePoint now) {
    auto r = store_->claim(lane, max, now, "node-1");
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    return r.is_ok() ? std::move(r).value() : ClaimResult{};
  }

  std::vector<std::string> claim_ids(std::string_view lane, std::size_t max, TimePoint now) {
    return ids_of(claim(lane, max, now).claimed);
  }

  // Completes a claimed execution with `status` at `now`.
  void finish(const Execution& e, TimePoint now, ExecStatus status = ExecStatus::kSucceeded) {
    Completion c;
    c.status = status;
    c.finished = now;
    Status s = store_->complete(e.id, e.fence, c);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }

  // Completes a claimed execution as failed, to be retried at `retry_at`.
  void retry(const Execution& e, TimePoint now, TimePoint retry_at) {
    Completion c;
    c.status = ExecStatus::kFailed;
    c.retry = true;
    c.retry_at = retry_at;
    c.finished = now;
    c.message = "boom";
    Status s = store_->complete(e.id, e.fence, c);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }

  ExecStatus status_of(std::string_view id) {
    auto e = store_->get(id);
    EXPECT_TRUE(e.has_value()) << id;
    return e ? e->status : ExecStatus::kQueued;
  }

  std::unique_ptr<Store> store_;
};

}  // namespace schedd::testing
