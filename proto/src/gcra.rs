//! The Lua scripts of a fleet-wide rate limit kept in Redis: the worker paces each Webex
//! org's SCIM requests with them, the coordinator the Graph requests of each app
//! registration. Pure text: each side runs them with its own Redis connection, so the
//! two cannot drift apart.
//!
//! GCRA (the "virtual scheduling" form of a token bucket) with Redis's own clock, so that
//! processes on different hosts agree on time. A caller *reserves* the next free slot and
//! sleeps until it instead of asking again and again. Both scripts take two keys that must
//! share a Redis Cluster slot (name them with one hash tag): the theoretical arrival time
//! (`tat`) and the "paused until" time (`paused`), both in microseconds of Redis time.

/// Reserves the next slot and returns the microseconds to wait before sending (≤ 0: now).
/// `KEYS`: tat, paused. `ARGV`: emission interval (µs, an integer), tolerance (µs: how far
/// ahead of the steady schedule a request may go, `burst - 1` intervals). A pause pushes
/// every later slot past its end.
pub const GCRA_RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local start = now
local paused = tonumber(redis.call('GET', KEYS[2]) or '0')
if paused > start then start = paused end
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < start then tat = start end
local allow_at = tat - tolerance
if allow_at < start then allow_at = start end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1000)
return allow_at - now
";

/// Pauses until now + `ARGV[1]` µs, unless already paused longer (a `Retry-After`).
/// `KEYS`: paused.
pub const GCRA_PAUSE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local pause = tonumber(ARGV[1])
local until_ = now + pause
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then
  redis.call('SET', KEYS[1], string.format('%.0f', until_), 'PX', math.ceil(pause / 1000) + 1000)
end
return 1
";
