// Microbenchmarks of schedule evaluation: Schedule::next_after for the kinds of schedule a
// config holds, parse_cron, and planning one lookahead window. Results and the command that
// reproduces them are in docs/PERFORMANCE.md; nothing here asserts a timing.
//
// Most next_after benchmarks walk a chain of fire instants (t = next_after(t)), which is what
// the planner does, and start the chain over when it leaves a fixed span so that every
// repetition measures the same stretch of calendar; those about DST transitions call it from
// fixed start instants spread over the days in question. items/s is next_after calls per
// second of CPU time.
#include <benchmark/benchmark.h>
#include <date/tz.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "core/schedule/cron.h"
#include "core/schedule/schedule.h"

namespace schedd {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

// Benchmarks must not run on a schedule that failed to build: stop with the reason.
Schedule must(StatusOr<Schedule> s, const char* what) {
  if (!s.is_ok()) {
    std::cerr << what << ": " << s.status().message() << "\n";
    std::abort();
  }
  return std::move(s).value();
}

const date::time_zone* zone(const char* name) {
  // locate_zone loads the tz database on first use; benchmarks call it outside their loops.
  return date::locate_zone(name);
}

TimePoint utc(date::year_month_day ymd, hours h = hours(0)) {
  return TimePoint(date::sys_days(ymd) + h);
}

// 2026-01-05 (a Monday) 00:00:00Z: where the chains start unless they say otherwise.
const TimePoint kStart = utc(date::year(2026) / 1 / 5);

// Walks next_after from `start`, restarting from `start` once past `start + span`.
void run_chain(benchmark::State& state, const Schedule& s, TimePoint start,
               std::chrono::system_clock::duration span) {
  const TimePoint end = start + span;
  TimePoint t = start;
  for (auto _ : state) {
    std::optional<TimePoint> next = s.next_after(t);
    benchmark::DoNotOptimize(next);
    t = (!next || *next > end) ? start : *next;
  }
  state.SetItemsProcessed(state.iterations());
}

// Calls next_after once per start instant, cycling through `starts` in order.
void run_starts(benchmark::State& state, const Schedule& s, const std::vector<TimePoint>& starts) {
  std::size_t i = 0;
  for (auto _ : state) {
    std::optional<TimePoint> next = s.next_after(starts[i]);
    benchmark::DoNotOptimize(next);
    if (++i == starts.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}

// Instants from `begin` (inclusive) to `begin + span` (exclusive), `step` apart.
std::vector<TimePoint> instants(TimePoint begin, std::chrono::system_clock::duration span,
                                std::chrono::system_clock::duration step) {
  std::vector<TimePoint> out;
  for (TimePoint t = begin; t < begin + span; t += step) out.push_back(t);
  return out;
}

void BM_NextAfter_EveryMinute_UTC(benchmark::State& state) {
  Schedule s = must(Schedule::cron("*/1 * * * *", zone("UTC")), "*/1 * * * *");
  run_chain(state, s, kStart, date::days(30));
}
BENCHMARK(BM_NextAfter_EveryMinute_UTC);

// The same in New York, on ordinary days (January: far from any DST transition).
void BM_NextAfter_EveryMinute_NY(benchmark::State& state) {
  Schedule s = must(Schedule::cron("*/1 * * * *", zone("America/New_York")), "*/1 * * * *");
  run_chain(state, s, kStart, date::days(30));
}
BENCHMARK(BM_NextAfter_EveryMinute_NY);

void BM_NextAfter_Weekdays9_NY(benchmark::State& state) {
  Schedule s = must(Schedule::cron("0 9 * * MON-FRI", zone("America/New_York")), "0 9 * * MON-FRI");
  // Two years: both DST transitions, twice.
  run_chain(state, s, kStart, date::days(730));
}
BENCHMARK(BM_NextAfter_Weekdays9_NY);

// 02:30 daily in New York, which does not exist on the spring-forward day and is within
// 3 hours of the fall-back on the autumn day. The starting instants are every 15 minutes
// over the four days around each 2026 transition (Mar 8 and Nov 1), visited in order.
void BM_NextAfter_Daily0230_NY_DstDays(benchmark::State& state) {
  Schedule s = must(Schedule::cron("30 2 * * *", zone("America/New_York")), "30 2 * * *");
  std::vector<TimePoint> starts =
      instants(utc(date::year(2026) / 3 / 6), date::days(4), minutes(15));
  std::vector<TimePoint> autumn =
      instants(utc(date::year(2026) / 10 / 30), date::days(4), minutes(15));
  starts.insert(starts.end(), autumn.begin(), autumn.end());
  run_starts(state, s, starts);
}
BENCHMARK(BM_NextAfter_Daily0230_NY_DstDays);

// Baseline for the one above: the same start instants moved to ordinary days (+4 weeks in
// spring is past the transition; -4 weeks in autumn is before it), so the ratio of the two
// is the cost of being near a transition.
void BM_NextAfter_Daily0230_NY_OrdinaryDays(benchmark::State& state) {
  Schedule s = must(Schedule::cron("30 2 * * *", zone("America/New_York")), "30 2 * * *");
  std::vector<TimePoint> starts =
      instants(utc(date::year(2026) / 4 / 3), date::days(4), minutes(15));
  std::vector<TimePoint> autumn =
      instants(utc(date::year(2026) / 10 / 2), date::days(4), minutes(15));
  starts.insert(starts.end(), autumn.begin(), autumn.end());
  run_starts(state, s, starts);
}
BENCHMARK(BM_NextAfter_Daily0230_NY_OrdinaryDays);

// Interval crons near a fall-back. In New York the clock falls back at 2026-11-01 06:00Z
// (02:00 EDT -> 01:00 EST); next_after takes its careful path for every `t` within 3 hours of
// that instant (Schedule::next_in_zone (before 5f41a49)), i.e. from 03:00Z to 09:00Z, and these
// benchmarks cover exactly that window.
const TimePoint kFallBackNear = utc(date::year(2026) / 11 / 1, hours(3));

void BM_NextAfter_EveryMinute_NY_FallBackWindow(benchmark::State& state) {
  Schedule s = must(Schedule::cron("*/1 * * * *", zone("America/New_York")), "*/1 * * * *");
  run_chain(state, s, kFallBackNear, hours(6));
}
BENCHMARK(BM_NextAfter_EveryMinute_NY_FallBackWindow);

// A call costs milliseconds here, so instead of a chain (which would only cover the first
// minutes of the window) the calls start at instants 3 minutes apart across the window.
void BM_NextAfter_EverySecond_NY_FallBackWindow(benchmark::State& state) {
  Schedule s = must(Schedule::cron("* * * * * *", zone("America/New_York")), "* * * * * *");
  run_starts(state, s, instants(kFallBackNear, hours(6), minutes(3)));
}
BENCHMARK(BM_NextAfter_EverySecond_NY_FallBackWindow)->Unit(benchmark::kMicrosecond);

// Baseline for the one above: the same schedule and start instants a week earlier.
void BM_NextAfter_EverySecond_NY_OrdinaryNight(benchmark::State& state) {
  Schedule s = must(Schedule::cron("* * * * * *", zone("America/New_York")), "* * * * * *");
  run_starts(state, s, instants(kFallBackNear - date::days(7), hours(6), minutes(3)));
}
BENCHMARK(BM_NextAfter_EverySecond_NY_OrdinaryNight);

void BM_NextAfter_LastDayOfMonth_UTC(benchmark::State& state) {
  Schedule s = must(Schedule::cron("0 0 L * *", zone("UTC")), "0 0 L * *");
  run_chain(state, s, kStart, date::days(366 * 10));
}
BENCHMARK(BM_NextAfter_LastDayOfMonth_UTC);

// A fifth Monday in February: only in leap years whose Feb 1 is a Monday (2044, 2072, 2112,
// ...), so each call scans up to decades of calendar.
void BM_NextAfter_FifthMondayOfFeb_UTC(benchmark::State& state) {
  Schedule s = must(Schedule::cron("0 0 * 2 1#5", zone("UTC")), "0 0 * 2 1#5");
  run_chain(state, s, kStart, date::days(146097));
}
BENCHMARK(BM_NextAfter_FifthMondayOfFeb_UTC);

// The expressions issue #3 names, for its "< 2 us per next_after" goal.
void BM_NextAfter_WorkHoursEvery5m_NY(benchmark::State& state) {
  Schedule s = must(Schedule::cron("*/5 9-17 * * MON-FRI", zone("America/New_York")),
                    "*/5 9-17 * * MON-FRI");
  run_chain(state, s, kStart, date::days(366));
}
BENCHMARK(BM_NextAfter_WorkHoursEvery5m_NY);

// Both day fields restricted, so (Vixie's OR rule) Feb 29 or any Monday of February.
void BM_NextAfter_Feb29OrMonday_UTC(benchmark::State& state) {
  Schedule s = must(Schedule::cron("0 0 29 2 MON", zone("UTC")), "0 0 29 2 MON");
  run_chain(state, s, kStart, date::days(146097));
}
BENCHMARK(BM_NextAfter_Feb29OrMonday_UTC);

void BM_ParseCron_WorkHours(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(parse_cron("*/5 9-17 * * MON-FRI"));
}
BENCHMARK(BM_ParseCron_WorkHours);

void BM_NextAfter_Every60s(benchmark::State& state) {
  Schedule s = must(Schedule::every(seconds(60)), "every 60s");
  run_chain(state, s, kStart, date::days(30));
}
BENCHMARK(BM_NextAfter_Every60s);

// Six fields, lists, ranges, steps, names and the L / W / # extensions.
constexpr const char* kComplexCron =
    "0 0/5 9-17,20-22 1-15,LW,20W JAN-MAR,JUN-DEC MON-THU,FRIL,SAT#1";

void BM_ParseCron_Complex(benchmark::State& state) {
  for (auto _ : state) {
    auto e = parse_cron(kComplexCron);
    benchmark::DoNotOptimize(e);
    if (!e.is_ok()) {
      state.SkipWithError(e.status().message().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseCron_Complex);

// Planning one lookahead window (docs/design.md: default 2h) for one every-minute helper: the
// next_after chain from `now` to `now + 2h`, 120 fire instants, collected as the planner
// would. items/s counts next_after calls (121 per window: the last one leaves the window).
void plan_window(benchmark::State& state, const date::time_zone* tz) {
  Schedule s = must(Schedule::cron("*/1 * * * *", tz), "*/1 * * * *");
  const TimePoint now = kStart + seconds(17);
  const TimePoint horizon = now + hours(2);
  std::vector<TimePoint> planned;
  planned.reserve(128);
  int64_t calls = 0;
  for (auto _ : state) {
    planned.clear();
    for (std::optional<TimePoint> t = s.next_after(now); t && *t <= horizon; t = s.next_after(*t)) {
      planned.push_back(*t);
      ++calls;
    }
    ++calls;  // the call that left the window
    benchmark::DoNotOptimize(planned.data());
  }
  if (planned.size() != 120) {
    state.SkipWithError("expected 120 planned executions");
    return;
  }
  state.SetItemsProcessed(calls);
  state.counters["windows_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_PlanWindow2h_EveryMinute_UTC(benchmark::State& state) { plan_window(state, zone("UTC")); }
BENCHMARK(BM_PlanWindow2h_EveryMinute_UTC);

void BM_PlanWindow2h_EveryMinute_NY(benchmark::State& state) {
  plan_window(state, zone("America/New_York"));
}
BENCHMARK(BM_PlanWindow2h_EveryMinute_NY);

}  // namespace
}  // namespace schedd
