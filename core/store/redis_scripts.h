// The Lua scripts of the Redis store (docs/redis.md): one per Store transition, each run
// atomically by Redis. Every script starts from kPrelude (shared functions); ARGV[1] is always
// the key prefix "schedd:<namespace>:". Scores are microseconds since the epoch, passed and
// stored as strings: Lua numbers print with 14 digits, which would round them.
#pragma once

#include <string_view>

namespace schedd::redis_lua {

extern const std::string_view kPrelude;

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
  kScriptCount
};
extern const Script kScripts[kScriptCount];

}  // namespace schedd::redis_lua
