"""Lua scripts of the Redis bus: each runs atomically inside Redis."""

# KEYS: meta, stream. ARGV: data, fresh epoch, history_size, history_ttl, meta_ttl, pub channel.
PUBLISH_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  -- a new epoch: a stream left over from a forgotten one is not this epoch's history
  epoch = ARGV[2]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
local added = redis.pcall('XADD', KEYS[2], 'MAXLEN', ARGV[3],
  string.format('%d-1', offset), 'd', ARGV[1])
if type(added) == 'table' and added.err then
  -- undo the offset so a failed publish leaves no hole
  redis.call('HINCRBY', KEYS[1], 'o', -1)
  return added
end
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
redis.call('PUBLISH', ARGV[6], string.format('%d', offset) .. ':' .. epoch .. ':' .. ARGV[1])
return {offset, epoch}
"""

# KEYS: meta, stream. ARGV: fresh epoch, meta_ttl, limit, first id wanted ('' = latest),
# epoch the caller knows. Returns {offset, epoch, entries}; latest entries come newest first.
HISTORY_LUA = """
local meta = redis.call('HMGET', KEYS[1], 'e', 'o')
local epoch, offset = meta[1], tonumber(meta[2]) or 0
if not epoch then
  -- create the epoch on first sight so a subscriber's position stays valid until
  -- the first publish
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  return {0, epoch, {}}
end
local limit = tonumber(ARGV[3])
if limit <= 0 then
  return {offset, epoch, {}}
end
if ARGV[4] == '' then
  return {offset, epoch, redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)}
end
if ARGV[5] ~= epoch then
  return {offset, epoch, {}}
end
return {offset, epoch, redis.call('XRANGE', KEYS[2], ARGV[4], '+', 'COUNT', limit)}
"""

REDIS_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: presence hash, expiry zset. ARGV: client id, info JSON, ttl ms.
PRESENCE_ADD_LUA = (
    REDIS_NOW_MS
    + """
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
-- both keys live as long as their longest-lived entry
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local at = string.format('%d', tonumber(last[2]))
redis.call('PEXPIREAT', KEYS[1], at)
redis.call('PEXPIREAT', KEYS[2], at)
return 1
"""
)

# KEYS: presence hash, expiry zset. Drops expired entries, returns HGETALL.
PRESENCE_LUA = (
    REDIS_NOW_MS
    + """
local cutoff = '(' .. string.format('%d', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', cutoff)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', cutoff)
  -- HDEL in slices: unpack() of a long list would overflow the Lua stack
  for i = 1, #gone, 1000 do
    redis.call('HDEL', KEYS[1], unpack(gone, i, math.min(i + 999, #gone)))
  end
end
return redis.call('HGETALL', KEYS[1])
"""
)
