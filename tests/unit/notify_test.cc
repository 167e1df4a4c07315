// The sd_notify protocol by hand (core/daemon/notify.h): what the environment asks for, the
// datagrams on a path and an abstract socket, and a watchdog that pings only while the
// heartbeat it watches moves on.
#include "core/daemon/notify.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "tests/testing/notify_listener.h"

namespace schedd {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;

std::function<const char*(const char*)> env_of(std::map<std::string, std::string> vars) {
  auto owned = std::make_shared<std::map<std::string, std::string>>(std::move(vars));
  return [owned](const char* name) -> const char* {
    auto it = owned->find(name);
    return it == owned->end() ? nullptr : it->second.c_str();
  };
}

TEST(NotifyEnvironmentTest, ReadsSocketAndWatchdogForThisProcess) {
  auto env = read_notify_environment(
      env_of({{"NOTIFY_SOCKET", "/run/x"}, {"WATCHDOG_USEC", "30000000"}, {"WATCHDOG_PID", "42"}}),
      42);
  EXPECT_EQ(env.socket, "/run/x");
  ASSERT_TRUE(env.watchdog);
  EXPECT_EQ(*env.watchdog, std::chrono::seconds(30));
  EXPECT_TRUE(env.warnings.empty());
}

TEST(NotifyEnvironmentTest, WatchdogOfAnotherProcessIsIgnored) {
  auto env = read_notify_environment(
      env_of({{"NOTIFY_SOCKET", "@x"}, {"WATCHDOG_USEC", "1000"}, {"WATCHDOG_PID", "41"}}), 42);
  EXPECT_FALSE(env.watchdog);
  EXPECT_TRUE(env.warnings.empty());
  // Without WATCHDOG_PID the watchdog is ours.
  env = read_notify_environment(env_of({{"WATCHDOG_USEC", "1000"}}), 42);
  ASSERT_TRUE(env.watchdog);
  EXPECT_EQ(env.watchdog->count(), 1000);
}

TEST(NotifyEnvironmentTest, BadValuesNameTheVariable) {
  auto env = read_notify_environment(env_of({{"WATCHDOG_USEC", "30s"}}), 42);
  EXPECT_FALSE(env.watchdog);
  ASSERT_EQ(env.warnings.size(), 1u);
  EXPECT_THAT(env.warnings[0], HasSubstr("WATCHDOG_USEC: \"30s\""));
  env = read_notify_environment(env_of({{"WATCHDOG_USEC", "0"}}), 42);
  EXPECT_FALSE(env.watchdog);
  EXPECT_EQ(env.warnings.size(), 1u);
  env = read_notify_environment(env_of({{"WATCHDOG_USEC", "100"}, {"WATCHDOG_PID", "me"}}), 42);
  EXPECT_FALSE(env.watchdog);
  ASSERT_EQ(env.warnings.size(), 1u);
  EXPECT_THAT(env.warnings[0], HasSubstr("WATCHDOG_PID: \"me\""));
}

TEST(NotifierTest, DisabledWithoutSocket) {
  Notifier n;
  EXPECT_FALSE(n.enabled());
  EXPECT_TRUE(n.send("READY=1").is_ok());
  Notifier relative("run/notify");
  EXPECT_FALSE(relative.enabled());
  EXPECT_THAT(relative.error(), HasSubstr("NOTIFY_SOCKET \"run/notify\""));
}

TEST(NotifierTest, SendsToAPathAndToAnAbstractSocket) {
  for (bool abstract : {false, true}) {
    testing::NotifyListener listener(abstract);
    Notifier n(listener.address());
    ASSERT_TRUE(n.enabled()) << n.error();
    ASSERT_TRUE(n.send("READY=1\nSTATUS=all good").is_ok());
    ASSERT_GE(listener.wait_for("READY=1", milliseconds(5000)), 0) << listener.address();
    auto messages = listener.messages();
    ASSERT_EQ(messages.size(), 1u);
    EXPECT_EQ(messages[0].text, "READY=1\nSTATUS=all good");
    EXPECT_TRUE(messages[0].has("STATUS="));
  }
}

TEST(NotifierTest, AGoneSocketIsAnErrorNamingIt) {
  std::string address;
  {
    testing::NotifyListener listener;
    address = listener.address();
  }
  Notifier n(address);
  Status s = n.send("READY=1");
  EXPECT_FALSE(s.is_ok());
  EXPECT_THAT(s.message(), HasSubstr(address));
}

TEST(NotifierTest, MonotonicUsecIsCurrent) {
  std::string field = monotonic_usec_field();
  ASSERT_TRUE(field.starts_with("MONOTONIC_USEC="));
  const long long usec = std::stoll(field.substr(15));
  const long long now =
      std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now().time_since_epoch())
          .count();
  // steady_clock is CLOCK_MONOTONIC on Linux.
  EXPECT_LE(usec, now);
  EXPECT_GT(usec, now - 60'000'000);
}

// A loop stand-in: poke() makes it "turn" (move its heartbeat) unless it is wedged.
struct FakeLoop {
  std::atomic<bool> wedged{false};
  std::atomic<steady_clock::rep> beat{0};
  void poke() {
    if (!wedged) beat = steady_clock::now().time_since_epoch().count();
  }
  steady_clock::time_point heartbeat() const {
    return steady_clock::time_point(steady_clock::duration(beat.load()));
  }
};

TEST(ServiceMonitorTest, PingsOnlyWhileTheHeartbeatMoves) {
  testing::NotifyListener listener;
  Notifier n(listener.address());
  FakeLoop loop;
  ServiceMonitor::Options o;
  o.watchdog = milliseconds(40);  // a ping every 20 ms
  o.status_every = milliseconds(50);
  o.status = [] { return std::string("running 0"); };
  o.heartbeat = [&] { return loop.heartbeat(); };
  o.poke = [&] { loop.poke(); };
  ServiceMonitor monitor(n, o);
  monitor.start();
  ASSERT_GE(listener.wait_for("WATCHDOG=1", milliseconds(5000)), 0);
  ASSERT_GE(listener.wait_for("STATUS=running 0", milliseconds(5000)), 0);

  loop.wedged = true;
  // The monitor holds pings back once it sees a poke unanswered.
  const auto deadline = steady_clock::now() + std::chrono::seconds(10);
  while (monitor.missed() == 0 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_GT(monitor.missed(), 0u);
  const uint64_t pings = monitor.pings();
  const uint64_t missed = monitor.missed();
  while (monitor.missed() < missed + 5 && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(monitor.pings(), pings) << "pinged while the loop was wedged";

  loop.wedged = false;
  loop.poke();  // the loop answers the outstanding poke
  while (monitor.pings() == pings && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_GT(monitor.pings(), pings) << "no pings after the loop turned again";
  monitor.stop();
  // Every ping counted was sent: the listener gets as many.
  while (listener.count("WATCHDOG=1") < monitor.pings() && steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  EXPECT_EQ(listener.count("WATCHDOG=1"), monitor.pings());
}

}  // namespace
}  // namespace schedd
