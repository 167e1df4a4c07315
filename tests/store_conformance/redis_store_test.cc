#include "core/store/redis_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "tests/store_conformance/store_conformance.h"
#include "tests/testing/redis_server.h"

namespace schedd::testing {
namespace {

using namespace std::chrono_literals;

// One redis-server of this test process's own (tests/testing/redis_server.h), started by the
// first test that needs it and stopped at exit; each store gets a namespace of its own.
int redis_port() {
  static RedisServer server;
  return server.port();
}

std::string unique_ns() {
  static std::atomic<int> n{0};
  return "t" + std::to_string(getpid()) + "-" + std::to_string(n++);
}

std::unique_ptr<RedisStore> open_store(RedisOptions o = {}) {
  o.address.port = redis_port();
  if (o.ns == "default") o.ns = unique_ns();
  auto s = RedisStore::open(o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

INSTANTIATE_TEST_SUITE_P(Redis, StoreConformanceTest, ::testing::Values(StoreFactory([] {
                           RedisOptions o;
                           o.node_id = "node-1";
                           // Conformance time jumps by hours without renewals: no lapses.
                           o.lease = std::chrono::hours(24 * 365);
                           return std::unique_ptr<Store>(open_store(o));
                         })));

}  // namespace
}  // namespace schedd::testing
