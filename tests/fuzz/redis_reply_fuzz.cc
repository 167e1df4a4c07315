// libFuzzer target for the decoding of Redis replies (core/store/redis_client.h): the input is
// what a Redis server sends back (RESP), parsed by hiredis's reader as RedisClient parses it,
// turned into RedisValue trees by redis_value(), and decoded as the Redis store decodes them:
// each reply as an execution hash (an HGETALL array of name, value, ...), as the claim
// script's positional reply (the kClaimReplyFields values), and, for an array, each element
// as a hash (lists, claims, expiries); each string as a template body (templates are stored
// as JSON, fetched with MGET), which must re-encode stably.
//
// Any reply must decode or fail with a message naming what is wrong; never crash.
//
// Built as `redis_reply_fuzz` (fuzz preset) and `redis_reply_fuzz_replay` (every build); see
// tests/fuzz/CMakeLists.txt.
#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>

#include "core/store/codec.h"
#include "core/store/redis_client.h"
#include "core/store/redis_scripts.h"
#include "fuzz_check.h"

namespace {

using schedd::ExecTemplate;
using schedd::RedisValue;

std::string_view g_input;  // the current input, for messages

std::shared_ptr<const ExecTemplate> find_template(const std::string& tid) {
  static const auto known = [] {
    auto t = std::make_shared<ExecTemplate>();
    t->name = "hourly";
    t->executor = "noop";
    t->key = "hourly";
    return std::shared_ptr<const ExecTemplate>(t);
  }();
  return tid == "7f3a9c0d2b1e4f56" ? known : nullptr;
}

void check_decoded(const schedd::StatusOr<schedd::Execution>& e) {
  if (!e.is_ok()) {
    FUZZ_CHECK("redis_reply_fuzz", !e.status().message().empty(),
               "a decode error without a message", g_input);
    return;
  }
  FUZZ_CHECK("redis_reply_fuzz", e->spec != nullptr, "a decoded execution without a template",
             g_input);
}

// As fetch_templates: a malformed body is an error (the store catches and reports it).
void check_template(const std::string& body) {
  std::shared_ptr<const ExecTemplate> t;
  try {
    t = schedd::codec::template_from_body(body);
  } catch (const std::exception&) {
    return;
  }
  const std::string once = schedd::codec::template_to_body(*t);
  std::string twice;
  try {
    twice = schedd::codec::template_to_body(*schedd::codec::template_from_body(once));
  } catch (const std::exception&) {
    schedd::fuzz::fail("redis_reply_fuzz", "a re-encoded template does not decode", g_input);
  }
  FUZZ_CHECK("redis_reply_fuzz", once == twice, "re-encoding a template is not stable", g_input);
}

void decode_value(const RedisValue& v, int depth) {
  if (v.type == RedisValue::Type::kString) check_template(v.str);
  if (v.type != RedisValue::Type::kArray) return;
  check_decoded(schedd::decode_execution(v, {}, find_template));
  check_decoded(schedd::decode_execution(v, schedd::redis_lua::kClaimReplyFields, find_template));
  if (depth < 3) {
    for (const auto& el : v.elements) decode_value(el, depth + 1);
  }
}

// hiredis 0.14 takes a reply's array length as given and callocs room for it at once. In the
// daemon a huge length (`*1000000000`) costs address space only (calloc of fresh pages is
// lazy) or fails as an out-of-memory reply error; under ASan the calloc zeroes every byte and
// one input takes minutes. So the harness refuses arrays over 64 Ki elements, as hiredis
// refuses what it cannot allocate (corpus/redis_reply/crash-huge-array).
redisReplyObjectFunctions* capped_functions(redisReplyObjectFunctions* defaults) {
  static redisReplyObjectFunctions* const base = defaults;
  static redisReplyObjectFunctions capped = [] {
    redisReplyObjectFunctions f = *base;
    f.createArray = [](const redisReadTask* task, int elements) -> void* {
      if (elements > (1 << 16)) return nullptr;
      return base->createArray(task, elements);
    };
    return f;
  }();
  return &capped;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_input = std::string_view(reinterpret_cast<const char*>(data), size);
  redisReader* reader = redisReaderCreate();
  FUZZ_CHECK("redis_reply_fuzz", reader != nullptr, "redisReaderCreate failed", g_input);
  reader->fn = capped_functions(reader->fn);
  // hiredis copies what it is fed.
  if (redisReaderFeed(reader, reinterpret_cast<const char*>(data), size) == REDIS_OK) {
    for (int replies = 0; replies < 64; ++replies) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK || raw == nullptr) break;
      const RedisValue v = schedd::redis_value(*static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      decode_value(v, 0);
    }
  }
  redisReaderFree(reader);
  return 0;
}
