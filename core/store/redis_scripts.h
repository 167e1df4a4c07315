// The Lua scripts of the Redis store (docs/redis.md): one per Store transition, each run
// atomically by Redis. Every script starts from kPrelude (shared functions); ARGV[1] is always
// the key prefix "schedd:<namespace>:". Scores are microseconds since the epoch, passed and
// stored as strings: Lua numbers print with 14 digits, which would round them.
#pragma once

#include <cstddef>
#include <string_view>

namespace schedd::redis_lua {

extern const std::string_view kPrelude;

// The claim script answers each claimed execution with these hash fields' values, in this order
// (then a few more the script itself needs; kClaimFields in the prelude lists them all).
inline constexpr std::string_view kClaimReplyFields[] = {"id",  "tpl",   "due",  "nb", "seq", "att",
                                                         "st",  "fence", "cr",   "sa", "fi",  "msg",
                                                         "out", "node",  "name", "pa", "key"};

// Values per submission in the submit script's ARGV (after the prefix): now_ns now_us capacity
// tid body pa, then the 16 insert fields.
inline constexpr std::size_t kSubmitArgs = 22;

struct Script {
  const char* name;
  std::string_view body;  // run after kPrelude
};

// In this order; RedisStore refers to them by index.
enum ScriptId {
  kPlan,
  kSubmit,
  kClaim,
  kComplete,
  kCancel,
  kRemovePlanned,
  kPrune,
  kCounts,
  kRecover,
  kNextEvent,
  kRenew,
  kPutHelper,
  kListDue,
  kIndexDue,
  kScriptCount
};
extern const Script kScripts[kScriptCount];

}  // namespace schedd::redis_lua
