#include "core/store/redis_scripts.h"

namespace schedd::redis_lua {

// Keys (P = ARGV[1] = "schedd:<namespace>:"), as docs/redis.md lists them:
//   P e:<id>        hash: one execution (fields below)
//   P t:<tid>       string: a template's JSON body (tid: FNV-1a of the body)
//   P ids           zset (score 0): every execution id, for list() in id order
//   P q:<key>       zset: the key's queued executions, score due (us), member m
//   P run           hash: key -> id of its running execution
//   P pend          zset: heads whose key is free, score not_before, member m
//   P watch         zset: heads waiting to be skipped/replaced, score not_before, member m
//   P ready:<lane>:<priority>  zset: claimable heads, score due, member m
//   P due:<lane>    zset: queued executions of the lane by not_before (queued-and-due counts)
//   P dq            zset: every queued execution, score due, member m (list in due order)
//   P lanes         set: lane names seen
//   P lrun          hash: lane -> running count (cluster-wide)
//   P ln:<lane>     hash: node -> its running count in the lane (fair cluster capacity)
//   P lw:<lane>     zset: nodes waiting for the lane's cluster capacity, score their latest
//                   claim (us)
//   P exp           zset: queued first attempts with an expiry, score due + expiry
//   P hist:<st>     zset: terminal executions of status code st, score finished (pruning
//                   per status: [history] retention)
//   P hist          zset: terminal executions written by a schedd before per-status history;
//                   no longer written, pruned at the longest retention
//   P pl:<helper>   set: queued planned executions of the helper (remove_planned)
//   P lease         zset: running executions, score lease deadline
//   P h:<helper>    hash: helper runtime state: en, ov, pu, pr (priority), ex (expiry ms)
//   P seq, P fence  counters
//   P wake, P helper  pub/sub channels (wake "free\n<node>...": only the nodes named)
// m = "<seq as 16 hex digits><sep><id>": equal scores order by seq. sep is ':' for an
// execution that overlap skip/replace never applies to (not a first attempt with overlap skip
// or replace), '|' for the others and for every execution written before that mark.
// Execution hash fields: id tpl key lane pri org name ov exps expns ma due dus nb nbs att seq
// st fence cr sa fi msg out node m rr (times: ns strings; *s fields: us scores; rr = 1 on a
// running execution once overlap = replace was reported for it).
// Status codes as codec.h; overlap 0 queue 1 skip 2 replace 3 allow; origin 1 helper.
const std::string_view kPrelude = R"lua(
local P = ARGV[1]
-- The script's now (us, a number) when it has one: a free head already not_before it goes
-- straight to its lane's ready set instead of through pend (claim checks nbs again).
local NOW = nil
local function ex(id) return P .. 'e:' .. id end
local function idof(m) return string.sub(m, 18) end
local function load(id)
  local v = redis.call('HMGET', ex(id), 'key', 'lane', 'pri', 'org', 'name', 'ov', 'exps', 'ma',
                       'att', 'st', 'm', 'dus', 'nbs', 'node', 'fence')
  if not v[1] then return nil end
  return {id = id, key = v[1], lane = v[2], pri = v[3], org = v[4], name = v[5], ov = v[6],
          exps = v[7], ma = tonumber(v[8]), att = tonumber(v[9]), st = tonumber(v[10]), m = v[11],
          dus = v[12], nbs = v[13], node = v[14], fence = v[15]}
end
local function full(id) return redis.call('HGETALL', ex(id)) end
-- What claim reads of an execution: the stored part of its reply, then what start() needs.
-- (Every field read costs: Redis hands each to Lua as a new string.)
local CLAIM = {'tpl', 'due', 'nb', 'seq', 'att', 'cr', 'msg', 'out', 'key', 'lane', 'exps', 'org',
               'name', 'nbs', 'pa'}
-- Places the head m of a free key: ready when not_before has come, else pend.
local function put_free(m, lane, pri, dus, nbs)
  if NOW and tonumber(nbs) <= NOW then
    redis.call('ZADD', P .. 'ready:' .. lane .. ':' .. pri, dus, m)
  else
    redis.call('ZADD', P .. 'pend', nbs, m)
  end
end
local function unplace(m, h)
  redis.call('ZREM', P .. 'pend', m)
  redis.call('ZREM', P .. 'watch', m)
  redis.call('ZREM', P .. 'ready:' .. h.lane .. ':' .. h.pri, m)
end
local function watches(key, h)
  if h.att ~= 1 then return false end
  if h.ov ~= '1' and h.ov ~= '2' then return false end
  local rid = redis.call('HGET', P .. 'run', key)
  local r = redis.call('HMGET', ex(rid), 'name', 'rr')
  return r[1] == h.name and (h.ov == '1' or r[2] ~= '1')
end
-- Places h (fields as load() gives them), the head of its key: ready or pend when the key is
-- free, watched when a run of the key holds it and overlap skip/replace applies to it.
local function place(h)
  if redis.call('HEXISTS', P .. 'run', h.key) == 0 then
    put_free(h.m, h.lane, h.pri, h.dus, h.nbs)
  elseif watches(h.key, h) then
    redis.call('ZADD', P .. 'watch', h.nbs, h.m)
  end
end
local function place_head(key)
  local head = redis.call('ZRANGE', P .. 'q:' .. key, 0, 0)[1]
  if head then place(load(idof(head))) end
end
-- Queues h; returns its rank in its key's queue (0: the head). A new head takes the place of
-- the one it displaced, from the fields h already has.
local function enqueue(h)
  local q = P .. 'q:' .. h.key
  redis.call('ZADD', q, h.dus, h.m)
  local rank = redis.call('ZRANK', q, h.m)
  if rank == 0 then
    local old = redis.call('ZRANGE', q, 1, 1)[1]
    if old then unplace(old, load(idof(old))) end
    place(h)
  end
  redis.call('ZADD', P .. 'due:' .. h.lane, h.nbs, h.id)
  redis.call('ZADD', P .. 'dq', h.dus, h.m)
  if h.att == 1 and h.exps ~= '' then redis.call('ZADD', P .. 'exp', h.exps, h.id) end
  if h.org == '1' then redis.call('SADD', P .. 'pl:' .. h.name, h.id) end
  return rank
end
local function dequeue(h)
  local q = P .. 'q:' .. h.key
  local was_head = redis.call('ZRANGE', q, 0, 0)[1] == h.m
  unplace(h.m, h)
  redis.call('ZREM', q, h.m)
  redis.call('ZREM', P .. 'due:' .. h.lane, h.id)
  redis.call('ZREM', P .. 'dq', h.m)
  redis.call('ZREM', P .. 'exp', h.id)
  if h.org == '1' then redis.call('SREM', P .. 'pl:' .. h.name, h.id) end
  if was_head then place_head(h.key) end
end
local function finish_queued(h, st, now_ns, now_us, msg)
  dequeue(h)
  redis.call('HSET', ex(h.id), 'st', st, 'fi', now_ns, 'msg', msg)
  redis.call('ZADD', P .. 'hist:' .. st, now_us, h.id)
  return full(h.id)
end
-- A batch of completions: lease removals, lane counts and history entries (by status code)
-- written once at the end (flush).
local function batch() return {leases = {}, lrun = {}, lnode = {}, hist = {}} end
local function in_chunks(cmd, key, items)
  for j = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items)))
  end
end
-- Takes n from a node's running count in a lane; never below 0 (runs claimed by a schedd
-- that did not count them end without having been counted).
local function ln_sub(lane, node, n)
  if redis.call('HINCRBY', P .. 'ln:' .. lane, node, -n) < 0 then
    redis.call('HSET', P .. 'ln:' .. lane, node, 0)
  end
end
local function flush(b)
  in_chunks('ZREM', P .. 'lease', b.leases)
  for st, items in pairs(b.hist) do in_chunks('ZADD', P .. 'hist:' .. st, items) end
  for lane, n in pairs(b.lrun) do redis.call('HINCRBY', P .. 'lrun', lane, -n) end
  for lane, nodes in pairs(b.lnode) do
    for node, n in pairs(nodes) do ln_sub(lane, node, n) end
  end
end
-- A node's running count in a lane (ln:<lane>).
local function node_running(lane, node)
  return tonumber(redis.call('HGET', P .. 'ln:' .. lane, node) or '0')
end
-- After completions freed capacity in `lanes` (lane -> {completing node -> true}): wakes, in
-- one PUBLISH "free\n<node>\n...", the daemons waiting for the lane's cluster capacity
-- (lw:<lane>, written by claim) that run fewer of the lane's executions than a completing
-- daemon now does. A completing daemon claims its lane again itself; a waiter running as many
-- is left asleep, so that balanced daemons exchange no wake-ups.
local function wake_waiters(lanes)
  local wake = {}
  for lane, completers in pairs(lanes) do
    local waiting = redis.call('ZRANGE', P .. 'lw:' .. lane, 0, -1)
    if #waiting > 0 then
      local most = 0
      for node in pairs(completers) do most = math.max(most, node_running(lane, node)) end
      for _, w in ipairs(waiting) do
        if not completers[w] and node_running(lane, w) < most then table.insert(wake, w) end
      end
    end
  end
  if #wake > 0 then redis.call('PUBLISH', P .. 'wake', 'free\n' .. table.concat(wake, '\n')) end
end
-- Frees h's key (h: id key lane node at least); with a batch b, its lease and lane counts go
-- in b. While a key runs its head is in watch (when overlap skip/replace applies to it) or
-- nowhere, so that is all to clear.
local function release(h, b)
  redis.call('HDEL', P .. 'run', h.key)
  if b then
    table.insert(b.leases, h.id)
    b.lrun[h.lane] = (b.lrun[h.lane] or 0) + 1
    local nodes = b.lnode[h.lane] or {}
    b.lnode[h.lane] = nodes
    nodes[h.node or ''] = (nodes[h.node or ''] or 0) + 1
  else
    redis.call('HINCRBY', P .. 'lrun', h.lane, -1)
    ln_sub(h.lane, h.node or '', 1)
    redis.call('ZREM', P .. 'lease', h.id)
  end
  local head = redis.call('ZRANGE', P .. 'q:' .. h.key, 0, 0)[1]
  if not head then return end
  local v = redis.call('HMGET', ex(idof(head)), 'lane', 'pri', 'dus', 'nbs', 'att', 'ov')
  if v[5] == '1' and (v[6] == '1' or v[6] == '2') then redis.call('ZREM', P .. 'watch', head) end
  put_free(head, v[1], v[2], v[3], v[4])
end
local function requeue(h, nb_ns, nb_us)
  h.att = h.att + 1
  h.nbs = nb_us
  h.st = 0
  redis.call('HSET', ex(h.id), 'st', 0, 'att', h.att, 'nb', nb_ns, 'nbs', nb_us, 'sa', '',
             'fi', '', 'node', '', 'rr', '')
  enqueue(h)
end
local function finish_released(h, st, fi_ns, fi_us)
  redis.call('HSET', ex(h.id), 'st', st, 'fi', fi_ns)
  redis.call('ZADD', P .. 'hist:' .. st, fi_us, h.id)
end
-- Set when start() watches a head: a decision on it may be due at once (claim).
local WATCHED = false
-- Starts h (fields as strings), just popped from its ready set: the head of a free key, in
-- no other placement. Its lease and the lane's running count are the caller's.
local function start(h, now_ns, node, fence)
  local q = P .. 'q:' .. h.key
  redis.call('HSET', P .. 'run', h.key, h.id)
  redis.call('ZREM', q, h.m)
  redis.call('ZREM', P .. 'due:' .. h.lane, h.id)
  redis.call('ZREM', P .. 'dq', h.m)
  if h.exps ~= '' then redis.call('ZREM', P .. 'exp', h.id) end
  if h.org == '1' then redis.call('SREM', P .. 'pl:' .. h.name, h.id) end
  local nxt = redis.call('ZRANGE', q, 0, 0)[1]
  if nxt and string.byte(nxt, 17) ~= 58 then
    -- The next head waits for the key; it is watched when overlap skip/replace applies to it
    -- (never to one whose m has ':' after its seq: not a first attempt of skip or replace).
    local v = redis.call('HMGET', ex(idof(nxt)), 'att', 'ov', 'name', 'nbs')
    if v[1] == '1' and (v[2] == '1' or v[2] == '2') and v[3] == h.name then
      redis.call('ZADD', P .. 'watch', v[4], nxt)
      WATCHED = true
    end
  end
  redis.call('HSET', ex(h.id), 'st', '1', 'sa', now_ns, 'fence', fence, 'node', node)
end
-- Drops execution id; st: its status code when the caller knows it.
local function destroy(id, st)
  st = st or redis.call('HGET', ex(id), 'st')
  redis.call('DEL', ex(id))
  redis.call('ZREM', P .. 'ids', id)
  if st and st ~= '0' and st ~= '1' then redis.call('ZREM', P .. 'hist:' .. st, id) end
  redis.call('ZREM', P .. 'hist', id)
end
local function interrupt(h, now_ns, now_us, msg)
  release(h)
  redis.call('HSET', ex(h.id), 'msg', msg)
  if h.ma > h.att then
    requeue(h, now_ns, now_us)
  else
    finish_released(h, 8, now_ns, now_us)
  end
end
local function queued_due(now_us)
  local n = 0
  for _, l in ipairs(redis.call('SMEMBERS', P .. 'lanes')) do
    n = n + redis.call('ZCOUNT', P .. 'due:' .. l, '-inf', now_us)
  end
  return n
end
-- Inserts a new queued execution from the 16 fields at a[i..i+15] (id tpl key lane pri org name
-- ov exps expns ma due dus nb nbs att); nil when the id exists. `pa`: its own params (a ticket or
-- ad-hoc submission stored against a template's shape, docs/redis.md), '' or nil for none.
-- `fresh`: the caller knows the id is free. Fields that are empty until the execution starts or
-- ends (sa fi msg out node) are not written: a missing field reads as empty.
local LANES = {}
-- Sequence numbers: reserve(n) takes n from P seq in one INCRBY for the inserts that follow
-- (a block left unused leaves a gap, which orders nothing differently); without a reserved
-- one, an insert takes its own.
local SEQ, SEQ_END = 1, 0
local function reserve(n)
  if n <= SEQ_END - SEQ + 1 then return end
  SEQ_END = redis.call('INCRBY', P .. 'seq', n)
  SEQ = SEQ_END - n + 1
end
local function next_seq()
  if SEQ > SEQ_END then return redis.call('INCR', P .. 'seq') end
  SEQ = SEQ + 1
  return SEQ - 1
end
local function insert(a, i, now_ns, pa, fresh)
  local id = a[i]
  if not fresh and redis.call('EXISTS', ex(id)) == 1 then return nil end
  local seq = next_seq()
  local att = tonumber(a[i + 15])
  if att < 1 then att = 1 end
  -- ':' marks an execution that overlap skip/replace never applies to (see start()).
  local sep = ':'
  if att == 1 and (a[i + 7] == '1' or a[i + 7] == '2') then sep = '|' end
  local m = string.format('%016x', seq) .. sep .. id
  if pa and pa ~= '' then
    redis.call('HSET', ex(id), 'id', id, 'tpl', a[i + 1], 'key', a[i + 2], 'lane', a[i + 3],
               'pri', a[i + 4], 'org', a[i + 5], 'name', a[i + 6], 'ov', a[i + 7],
               'exps', a[i + 8], 'expns', a[i + 9], 'ma', a[i + 10], 'due', a[i + 11],
               'dus', a[i + 12], 'nb', a[i + 13], 'nbs', a[i + 14], 'att', att, 'seq', seq,
               'st', 0, 'fence', 0, 'cr', now_ns, 'm', m, 'pa', pa)
  else
    redis.call('HSET', ex(id), 'id', id, 'tpl', a[i + 1], 'key', a[i + 2], 'lane', a[i + 3],
               'pri', a[i + 4], 'org', a[i + 5], 'name', a[i + 6], 'ov', a[i + 7],
               'exps', a[i + 8], 'expns', a[i + 9], 'ma', a[i + 10], 'due', a[i + 11],
               'dus', a[i + 12], 'nb', a[i + 13], 'nbs', a[i + 14], 'att', att, 'seq', seq,
               'st', 0, 'fence', 0, 'cr', now_ns, 'm', m)
  end
  redis.call('ZADD', P .. 'ids', 0, id)
  if not LANES[a[i + 3]] then
    redis.call('SADD', P .. 'lanes', a[i + 3])
    LANES[a[i + 3]] = true
  end
  local h = {id = id, key = a[i + 2], lane = a[i + 3], pri = a[i + 4], org = a[i + 5],
             name = a[i + 6], ov = a[i + 7], exps = a[i + 8], ma = tonumber(a[i + 10]),
             att = att, st = 0, m = m, dus = a[i + 12], nbs = a[i + 14], seq = seq}
  h.rank = enqueue(h)
  return h
end
-- What a daemon wakes up for after now_us (us string): {pend nb_ns|false, watch nb_ns|false,
-- expiry ns|false, {lease id, score}* (up to 64)} (kNextEvent, and claim when it ran dry).
local function next_events(now_us)
  local after = '(' .. now_us
  local function first_nb(z)
    local m = redis.call('ZRANGEBYSCORE', P .. z, after, '+inf', 'LIMIT', 0, 1)[1]
    if not m then return false end
    return redis.call('HGET', ex(idof(m)), 'nb')
  end
  local e = redis.call('ZRANGEBYSCORE', P .. 'exp', after, '+inf', 'LIMIT', 0, 1)[1]
  local expns = false
  if e then expns = redis.call('HGET', ex(e), 'expns') end
  local leases = redis.call('ZRANGEBYSCORE', P .. 'lease', after, '+inf', 'WITHSCORES', 'LIMIT',
                            0, 64)
  return {first_nb('pend'), first_nb('watch'), expns, leases}
end
local function put_templates(a, i)
  local n = tonumber(a[i])
  for j = 1, n do
    redis.call('SET', P .. 't:' .. a[i + 2 * j - 1], a[i + 2 * j], 'NX')
  end
  return i + 1 + 2 * n
end
)lua";

namespace {

// ARGV: P now_ns now_us guard_name guard_en guard_has_ov guard_ov guard_pr guard_ex ntpl
// [tid body]* then per execution 16 fields + preset status code + preset message. Returns
// {created} or {-1} when the guard's helper state changed (guard_pr, guard_ex: '' for none).
constexpr std::string_view kPlanBody = R"lua(
local now_ns, now_us = ARGV[2], ARGV[3]
NOW = tonumber(now_us)
if ARGV[4] ~= '' then
  local v = redis.call('HMGET', P .. 'h:' .. ARGV[4], 'en', 'ov', 'pr', 'ex')
  local en = v[1] or ''
  local has_ov = v[2] and '1' or '0'
  if en ~= ARGV[5] or has_ov ~= ARGV[6] or (v[2] and v[2] ~= ARGV[7]) then return {-1} end
  if (v[3] or '') ~= ARGV[8] or (v[4] or '') ~= ARGV[9] then return {-1} end
end
local i = put_templates(ARGV, 10)
local created = 0
reserve(math.floor((#ARGV - i + 1) / 18))
while i <= #ARGV do
  local h = insert(ARGV, i, now_ns)
  if h then
    created = created + 1
    local preset = ARGV[i + 16]
    if preset ~= '0' then finish_queued(h, preset, now_ns, now_us, ARGV[i + 17]) end
  end
  i = i + 18
end
if created > 0 then redis.call('PUBLISH', P .. 'wake', 'plan') end
return {created}
)lua";

// ARGV: P, then per submission kSubmitArgs values: now_ns now_us capacity tid body (the
// template's; '' when the caller knows it is stored) pa (its own params, '' for none), the 16
// fields. Any number of submissions (RedisClient::send_batched merges concurrent ones), each
// as one submit: one reply per submission, {'ok', seq, position}, {'queued', position},
// {'running'} or {'full', queued}. One wake-up for the whole call. Queued-and-due executions
// are counted once, at the call's latest now (never fewer than at a submission's own), and
// kept up to date as the call adds.
constexpr std::string_view kSubmitBody = R"lua(
local out = {}
local stored = {}
local latest, latest_us = -1, nil
for i = 2, #ARGV, 22 do
  local t = tonumber(ARGV[i + 1])
  if t > latest then latest, latest_us = t, ARGV[i + 1] end
end
local queued = nil
local added = false
for i = 2, #ARGV, 22 do
  local now_ns, now_us = ARGV[i], ARGV[i + 1]
  NOW = tonumber(now_us)
  local tid = ARGV[i + 3]
  if ARGV[i + 4] ~= '' and not stored[tid] then
    redis.call('SET', P .. 't:' .. tid, ARGV[i + 4], 'NX')
    stored[tid] = true
  end
  local f = i + 6
  local id = ARGV[f]
  local old = nil
  if redis.call('EXISTS', ex(id)) == 1 then old = load(id) end
  if old and old.st == 0 then
    table.insert(out, {'queued', redis.call('ZRANK', P .. 'q:' .. old.key, old.m) + 1})
  elseif old and old.st == 1 then
    table.insert(out, {'running'})
  else
    queued = queued or queued_due(latest_us)
    if queued >= tonumber(ARGV[i + 2]) then
      table.insert(out, {'full', queued})
    else
      if old then destroy(id) end
      reserve(math.floor((#ARGV - i + 1) / 22))
      local h = insert(ARGV, f, now_ns, ARGV[i + 5], true)
      if tonumber(h.nbs) <= latest then queued = queued + 1 end
      added = true
      table.insert(out, {'ok', h.seq, h.rank + 1})
    end
  end
end
if added then redis.call('PUBLISH', P .. 'wake', 'submit') end
return out
)lua";

// ARGV: P lane max now_ns now_us node lease_us cap (-1: none) wait_stale_us wait_refresh_us.
// Returns {claimed, expired, skipped, replace ids, reaped (as they were), next events
// (next_events) or nil}; claimed executions as the values of CLAIM (kClaimReplyFields
// first), the others as HGETALL arrays.
// With a cluster capacity (cap >= 0) the claim is fair: while other daemons wait for the
// lane's capacity (lw:<lane>, entries not older than wait_stale_us; a waiting daemon's own
// entry is rewritten once older than wait_refresh_us), this one takes at most its
// share, ceil(cap / daemons waiting, itself included), counting what it runs (ln:<lane>). A
// claim that got less than `max` for lack of capacity or share while work is ready registers
// this node as waiting; complete wakes it when capacity frees (wake_waiters).
constexpr std::string_view kClaimBody = R"lua(
local lane, max, now_ns, now_us = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local node, lease_us, cap = ARGV[6], ARGV[7], tonumber(ARGV[8])
NOW = tonumber(now_us)
local claimed, expired, skipped, replace, reaped = {}, {}, {}, {}, {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'lease', '-inf', now_us, 'LIMIT', 0, 256)) do
  local h = load(id)
  table.insert(reaped, full(id))
  interrupt(h, now_ns, now_us, 'attempt ' .. h.att .. ' interrupted: the lease of node ' ..
            h.node .. ' lapsed')
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', now_us, 'LIMIT', 0, 1000)) do
  table.insert(expired, finish_queued(load(id), 6, now_ns, now_us, 'not started by due + expiry'))
end
local function apply_overlap()
  while true do
    local w = redis.call('ZRANGEBYSCORE', P .. 'watch', '-inf', now_us, 'LIMIT', 0, 1)[1]
    if not w then return end
    redis.call('ZREM', P .. 'watch', w)
    local h = load(idof(w))
    local rid = redis.call('HGET', P .. 'run', h.key)
    if h.ov == '1' then
      table.insert(skipped, finish_queued(h, 7, now_ns, now_us,
                                          'skipped: ' .. rid .. ' was still running'))
    else
      redis.call('HSET', ex(rid), 'rr', 1)
      table.insert(replace, rid)
    end
  end
end
apply_overlap()
for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. 'pend', '-inf', now_us, 'LIMIT', 0, 10000)) do
  redis.call('ZREM', P .. 'pend', m)
  local v = redis.call('HMGET', ex(idof(m)), 'lane', 'pri', 'dus')
  redis.call('ZADD', P .. 'ready:' .. v[1] .. ':' .. v[2], v[3], m)
end
local n = max
local lw = P .. 'lw:' .. lane
local limited, listed, fresh, others = false, false, false, 0
if cap >= 0 then
  local running = tonumber(redis.call('HGET', P .. 'lrun', lane) or '0')
  local free = math.max(0, cap - running)
  if free < n then n, limited = free, true end
  local stale, refresh = tonumber(ARGV[9]), tonumber(ARGV[10])
  local all = redis.call('ZRANGE', lw, 0, -1, 'WITHSCORES')
  for j = 1, #all, 2 do
    local at = tonumber(all[j + 1])
    if all[j] == node then
      listed, fresh = true, at >= refresh
    elseif at < stale then
      redis.call('ZREM', lw, all[j])
    else
      others = others + 1
    end
  end
  if others > 0 then
    local left = math.max(0, math.ceil(cap / (others + 1)) - node_running(lane, node))
    if left < n then n, limited = left, true end
  end
end
-- Popped by (priority, due, seq); one placed ready by a later clock than this claim's goes
-- back to pend until its not_before.
local picked = {}
local last_pri = 1
for pri = 1, 5 do
  if n <= 0 then break end
  last_pri = pri
  local rk = P .. 'ready:' .. lane .. ':' .. pri
  while n > 0 do
    local asked = n
    local pop = redis.call('ZPOPMIN', rk, n)
    for j = 1, #pop, 2 do
      local id = idof(pop[j])
      local v = redis.call('HMGET', ex(id), unpack(CLAIM))
      if not v[1] then
      elseif tonumber(v[14]) > NOW then
        redis.call('ZADD', P .. 'pend', v[14], pop[j])
      else
        v.id, v.m = id, pop[j]
        table.insert(picked, v)
        n = n - 1
      end
    end
    -- Fewer than asked for: the set is empty now (a pop that ran into later not_befores
    -- asks again for what it put back in pend).
    if #pop < 2 * asked then break end
  end
end
if #picked > 0 then
  local fence = redis.call('INCRBY', P .. 'fence', tostring(#picked)) - #picked
  local leases = {}
  for _, v in ipairs(picked) do
    fence = fence + 1
    local f = tostring(fence)
    start({id = v.id, key = v[9], lane = v[10], exps = v[11], org = v[12], name = v[13], m = v.m},
          now_ns, node, f)
    -- kClaimReplyFields: id tpl due nb seq att st fence cr sa fi msg out node name pa key
    table.insert(claimed, {v.id, v[1], v[2], v[3], v[4], v[5], '1', f, v[6], now_ns, '', v[7],
                           v[8], node, v[13], v[15], v[9]})
    table.insert(leases, lease_us)
    table.insert(leases, v.id)
    if #leases >= 1000 then
      redis.call('ZADD', P .. 'lease', unpack(leases))
      leases = {}
    end
  end
  if #leases > 0 then redis.call('ZADD', P .. 'lease', unpack(leases)) end
  redis.call('HINCRBY', P .. 'lrun', lane, tostring(#picked))
  redis.call('HINCRBY', P .. 'ln:' .. lane, node, tostring(#picked))
end
if cap >= 0 then
  -- Waiting: held back by capacity or share (not by a lack of work) with work still ready.
  local waiting = false
  if limited and n <= 0 then
    -- One EXISTS for the priorities not yet emptied (an empty zset does not exist).
    local sets = {}
    for pri = last_pri, 5 do table.insert(sets, P .. 'ready:' .. lane .. ':' .. pri) end
    waiting = redis.call('EXISTS', unpack(sets)) > 0
  end
  if waiting then
    if not fresh then redis.call('ZADD', lw, now_us, node) end
  elseif listed and (max > 0 or node_running(lane, node) >= math.ceil(cap / (others + 1))) then
    -- A claim for nothing stops the wait only of a daemon at its share (its workers are
    -- busy). One below it asks for nothing while a claim of its own holds its free workers:
    -- it still waits, or the others would take its share meanwhile.
    redis.call('ZREM', lw, node)
  end
end
-- The runs just started may have put their keys' next heads in watch.
if WATCHED then apply_overlap() end
if #reaped > 0 then redis.call('PUBLISH', P .. 'wake', 'reaped') end
-- A claim that ran out of ready work (or asked for none) answers the next events too: the
-- dispatcher asks for them next, and this saves it that round trip (RedisStore::next_event).
local nxt = false
if max == 0 or (#picked < max and not limited) then nxt = next_events(now_us) end
return {claimed, expired, skipped, replace, reaped, nxt}
)lua";

// ARGV: P then, per completion, id fence status retry nb_ns nb_us fi_ns fi_us msg out.
// Returns one reply per completion: {'ok'}, {'nf'} or {'stale', status, fence}.
constexpr std::string_view kCompleteBody = R"lua(
local out = {}
local retried = false
local b = batch()
local freed = {}  -- lane -> {node -> true}: whose completions freed capacity
for i = 2, #ARGV, 10 do
  local id = ARGV[i]
  local v = redis.call('HMGET', ex(id), 'st', 'fence', 'key', 'lane', 'node', 'att')
  if not v[1] then
    table.insert(out, {'nf'})
  elseif v[1] ~= '1' or v[2] ~= ARGV[i + 1] then
    table.insert(out, {'stale', tonumber(v[1]), v[2]})
  else
    NOW = tonumber(ARGV[i + 7])
    release({id = id, key = v[3], lane = v[4], node = v[5]}, b)
    local c = freed[v[4]] or {}
    freed[v[4]] = c
    c[v[5] or ''] = true
    if ARGV[i + 3] == '1' then
      redis.call('HSET', ex(id), 'msg', ARGV[i + 8], 'out', ARGV[i + 9])
      requeue(load(id), ARGV[i + 4], ARGV[i + 5])
      retried = true
    else
      if ARGV[i + 8] == '' and ARGV[i + 9] == '' and v[6] == '1' then
        -- A first attempt has no message or output yet: an empty one need not be written.
        redis.call('HSET', ex(id), 'st', ARGV[i + 2], 'fi', ARGV[i + 6])
      else
        redis.call('HSET', ex(id), 'st', ARGV[i + 2], 'fi', ARGV[i + 6], 'msg', ARGV[i + 8],
                   'out', ARGV[i + 9])
      end
      local hist = b.hist[ARGV[i + 2]] or {}
      b.hist[ARGV[i + 2]] = hist
      table.insert(hist, ARGV[i + 7])
      table.insert(hist, id)
    end
    table.insert(out, {'ok'})
  end
end
flush(b)
if retried then
  redis.call('PUBLISH', P .. 'wake', 'retry')
else
  wake_waiters(freed)
end
return out
)lua";

// ARGV: P id now_ns now_us
constexpr std::string_view kCancelBody = R"lua(
NOW = tonumber(ARGV[4])
local h = load(ARGV[2])
if not h then return {'nf'} end
if h.st == 0 then return {'ok', finish_queued(h, 5, ARGV[3], ARGV[4], 'cancelled while queued')} end
if h.st == 1 then return {'running'} end
return {'terminal', full(ARGV[2])}
)lua";

// ARGV: P name. Returns the ids removed.
// ARGV: P helper due_after_us ('': all). Returns the ids removed.
constexpr std::string_view kRemovePlannedBody = R"lua(
local after = tonumber(ARGV[3])
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', P .. 'pl:' .. ARGV[2])) do
  local h = load(id)
  if h and (not after or tonumber(h.dus) > after) then
    dequeue(h)
    destroy(id)
    table.insert(out, id)
  end
end
return out
)lua";

// ARGV: P limit legacy_before_us, then per terminal status: code before_us. Drops terminal
// executions finished before their status's cutoff, at most `limit` in all (the caller calls
// again while it gets `limit`); executions in the legacy `hist` go at legacy_before_us (the
// earliest cutoff). Returns how many were dropped.
constexpr std::string_view kPruneBody = R"lua(
local limit = tonumber(ARGV[2])
local n = 0
local function drop(zkey, before, st)
  if n >= limit then return end
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', '(' .. before, 'LIMIT', 0, limit - n)
  for _, id in ipairs(ids) do destroy(id, st) end
  n = n + #ids
end
for i = 4, #ARGV, 2 do drop(P .. 'hist:' .. ARGV[i], ARGV[i + 1], ARGV[i]) end
drop(P .. 'hist', ARGV[3], nil)
return n
)lua";

// ARGV: P now_us. Returns {lane, running, queued_due}*.
constexpr std::string_view kCountsBody = R"lua(
local out = {}
for _, l in ipairs(redis.call('SMEMBERS', P .. 'lanes')) do
  table.insert(out, l)
  table.insert(out, tonumber(redis.call('HGET', P .. 'lrun', l) or '0'))
  table.insert(out, redis.call('ZCOUNT', P .. 'due:' .. l, '-inf', ARGV[2]))
end
return out
)lua";

// ARGV: P now_ns now_us node. Interrupts runs of `node` (this daemon's earlier life) and runs
// whose lease lapsed. Returns them as they were.
constexpr std::string_view kRecoverBody = R"lua(
NOW = tonumber(ARGV[3])
local out = {}
local all = redis.call('ZRANGE', P .. 'lease', 0, -1, 'WITHSCORES')
for j = 1, #all, 2 do
  local id = all[j]
  local h = load(id)
  if tonumber(all[j + 1]) <= tonumber(ARGV[3]) or h.node == ARGV[4] then
    table.insert(out, full(id))
    interrupt(h, ARGV[2], ARGV[3], 'attempt ' .. h.att ..
              ' interrupted: its daemon stopped while it ran')
  end
end
if #out > 0 then redis.call('PUBLISH', P .. 'wake', 'recover') end
return out
)lua";

// ARGV: P now_us. Returns next_events(now_us).
constexpr std::string_view kNextEventBody = R"lua(
return next_events(ARGV[2])
)lua";

// ARGV: P lease_us [id fence]*. Renews the leases still held; returns the ids no longer held:
// claimed again under another fence, re-queued (0) or ended interrupted (8) by another daemon.
// A run that ended under its own fence was completed by this daemon, whose completion reached
// Redis before this renewal: not lost, and not returned.
// A lease only moves later (GT): a renewal can reach Redis after the ones its daemon sent next
// (sent on a connection the daemon gave up on, delivered once the network heals), and the
// daemon's run goes on until the latest lease end it was answered; an older one written over
// it would let another daemon take the key while the run still holds it.
constexpr std::string_view kRenewBody = R"lua(
local lost = {}
for j = 3, #ARGV, 2 do
  local v = redis.call('HMGET', ex(ARGV[j]), 'st', 'fence')
  if v[1] == '1' and v[2] == ARGV[j + 1] then
    redis.call('ZADD', P .. 'lease', 'XX', 'GT', ARGV[2], ARGV[j])
  elseif not v[1] or v[2] ~= ARGV[j + 1] or v[1] == '0' or v[1] == '8' then
    table.insert(lost, ARGV[j])
  end
end
return lost
)lua";

// ARGV: P name has_en en has_ov ov has_pu pu has_pr pr has_ex ex. Publishes the name when en,
// ov, pr or ex changed.
constexpr std::string_view kPutHelperBody = R"lua(
local k = P .. 'h:' .. ARGV[2]
local old = redis.call('HMGET', k, 'en', 'ov', 'pr', 'ex')
local function put(field, has, value)
  if has == '1' then redis.call('HSET', k, field, value) else redis.call('HDEL', k, field) end
end
put('en', ARGV[3], ARGV[4])
put('ov', ARGV[5], ARGV[6])
put('pu', ARGV[7], ARGV[8])
put('pr', ARGV[9], ARGV[10])
put('ex', ARGV[11], ARGV[12])
local new = redis.call('HMGET', k, 'en', 'ov', 'pr', 'ex')
if old[1] ~= new[1] or old[2] ~= new[2] or old[3] ~= new[3] or old[4] ~= new[4] then
  redis.call('PUBLISH', P .. 'helper', ARGV[2])
end
return 1
)lua";

// ARGV: P after_dus after_seq limit (after_dus '': from the first). Returns up to `limit`
// members m of queued executions in (due, seq) order strictly after the cursor (due, seq);
// after_seq is 16 hex digits, as m starts. Reads only.
constexpr std::string_view kListDueBody = R"lua(
local k = P .. 'dq'
local limit = tonumber(ARGV[4])
if ARGV[2] == '' then return redis.call('ZRANGEBYSCORE', k, '-inf', '+inf', 'LIMIT', 0, limit) end
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', k, ARGV[2], ARGV[2])) do
  if string.sub(m, 1, 16) > ARGV[3] then
    table.insert(out, m)
    if #out >= limit then return out end
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', k, '(' .. ARGV[2], '+inf', 'LIMIT', 0,
                              limit - #out)) do
  table.insert(out, m)
end
return out
)lua";

// ARGV: P. Once per namespace (marker P dqv): puts into the dq index every queued execution
// that a schedd without that index queued (from the lanes' due sets). Returns how many.
constexpr std::string_view kIndexDueBody = R"lua(
if redis.call('EXISTS', P .. 'dqv') == 1 then return 0 end
local n = 0
for _, l in ipairs(redis.call('SMEMBERS', P .. 'lanes')) do
  for _, id in ipairs(redis.call('ZRANGE', P .. 'due:' .. l, 0, -1)) do
    local v = redis.call('HMGET', ex(id), 'm', 'dus')
    if v[1] and v[2] then
      n = n + redis.call('ZADD', P .. 'dq', v[2], v[1])
    end
  end
end
redis.call('SET', P .. 'dqv', '1')
return n
)lua";

}  // namespace

const Script kScripts[kScriptCount] = {
    {"plan", kPlanBody},        {"submit", kSubmitBody},
    {"claim", kClaimBody},      {"complete", kCompleteBody},
    {"cancel", kCancelBody},    {"remove_planned", kRemovePlannedBody},
    {"prune", kPruneBody},      {"counts", kCountsBody},
    {"recover", kRecoverBody},  {"next_event", kNextEventBody},
    {"renew", kRenewBody},      {"put_helper", kPutHelperBody},
    {"list_due", kListDueBody}, {"index_due", kIndexDueBody},
};

}  // namespace schedd::redis_lua
