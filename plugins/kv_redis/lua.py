"""The Lua script every KV operation runs in Redis (atomic, as kv_lru's are under trio).

Keys of namespace N (prefix P = ``<prefix>:{N}:``; the braces keep a namespace in one
Redis Cluster slot):

- ``P stores``   hash: open store -> 1
- ``P bytes``    the namespace's bytes (key bytes + value bytes of live entries)
- ``P tick``     the recency counter
- ``P lru``      zset: ``store \\0 key`` by recency (the namespace's LRU order)
- ``P exp``      zset: ``store \\0 key`` by expiry (ms since the epoch)
- ``P s:S:lru``  zset: store S's keys by recency
- ``P s:S:v``, ``P s:S:size``, ``P s:S:exp``  hashes: value, size, expiry per key
- ``P s:S:st``   hash: hits, misses, evictions, expirations, bytes

Errors come back as ``NOTOPEN``, ``MAXSTORES <n>`` and are worded by the caller, as
kv_lru words them. The last argument is the time in ms (tests) or empty (production:
the server's ``TIME``, one clock for every daemon).
"""

SCRIPT = r"""
local P = KEYS[1]
local op = ARGV[1]
local now = tonumber(ARGV[#ARGV])  -- a test clock (ms); "" in production: the server's
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function sk(store, what) return P .. 's:' .. store .. ':' .. what end

local function remove(store, key, counter)
  local size = tonumber(redis.call('HGET', sk(store, 'size'), key))
  if not size then return false end
  local member = store .. '\0' .. key
  redis.call('HDEL', sk(store, 'v'), key)
  redis.call('HDEL', sk(store, 'size'), key)
  redis.call('HDEL', sk(store, 'exp'), key)
  redis.call('ZREM', sk(store, 'lru'), key)
  redis.call('ZREM', P .. 'lru', member)
  redis.call('ZREM', P .. 'exp', member)
  redis.call('DECRBY', P .. 'bytes', size)
  redis.call('HINCRBY', sk(store, 'st'), 'bytes', -size)
  if counter then redis.call('HINCRBY', sk(store, 'st'), counter, 1) end
  return true
end

local function split(member)
  local i = string.find(member, '\0', 1, true)
  return string.sub(member, 1, i - 1), string.sub(member, i + 1)
end

local function purge()
  local due = redis.call('ZRANGEBYSCORE', P .. 'exp', '-inf', now)
  for _, member in ipairs(due) do
    local store, key = split(member)
    remove(store, key, 'expirations')
  end
  return #due
end

local function touch(store, key)
  local tick = redis.call('INCR', P .. 'tick')
  redis.call('ZADD', sk(store, 'lru'), tick, key)
  redis.call('ZADD', P .. 'lru', tick, store .. '\0' .. key)
end

local function is_open(store) return redis.call('HEXISTS', P .. 'stores', store) == 1 end

if op == 'open' then
  local store, max_stores = ARGV[2], tonumber(ARGV[3])
  if is_open(store) then return 'OK' end
  local n = redis.call('HLEN', P .. 'stores')
  if n >= max_stores then return redis.error_reply('MAXSTORES ' .. n) end
  redis.call('HSET', P .. 'stores', store, 1)
  return 'OK'
end

if op == 'purge' then return purge() end

local store = ARGV[2]
if not is_open(store) then return redis.error_reply('NOTOPEN') end

if op == 'get' then
  purge()
  local v = redis.call('HGET', sk(store, 'v'), ARGV[3])
  if not v then
    redis.call('HINCRBY', sk(store, 'st'), 'misses', 1)
    return false
  end
  touch(store, ARGV[3])
  redis.call('HINCRBY', sk(store, 'st'), 'hits', 1)
  return v
elseif op == 'set' then
  local key, value, size = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local ttl, quota, max_entries = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
  purge()
  remove(store, key, nil)
  while redis.call('ZCARD', sk(store, 'lru')) >= max_entries do
    local head = redis.call('ZRANGE', sk(store, 'lru'), 0, 0)[1]
    remove(store, head, 'evictions')
  end
  while tonumber(redis.call('GET', P .. 'bytes') or '0') + size > quota do
    local head = redis.call('ZRANGE', P .. 'lru', 0, 0)[1]
    if not head then break end
    local hs, hk = split(head)
    remove(hs, hk, 'evictions')
  end
  redis.call('HSET', sk(store, 'v'), key, value)
  redis.call('HSET', sk(store, 'size'), key, size)
  redis.call('INCRBY', P .. 'bytes', size)
  redis.call('HINCRBY', sk(store, 'st'), 'bytes', size)
  touch(store, key)
  if ttl > 0 then
    redis.call('HSET', sk(store, 'exp'), key, now + ttl)
    redis.call('ZADD', P .. 'exp', now + ttl, store .. '\0' .. key)
  end
  return 'OK'
elseif op == 'delete' then
  purge()
  if remove(store, ARGV[3], nil) then return 1 end
  return 0
elseif op == 'list' then
  purge()
  return redis.call('ZRANGE', sk(store, 'lru'), 0, -1)
end
return redis.error_reply('unknown op ' .. op)
"""
