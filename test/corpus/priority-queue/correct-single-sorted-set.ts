/**
 * @correct Ready work is one sorted set scored rank × 2^40 + INCR sequence (instead of one list per priority), aging reads a second sorted set of ready-since times, and priority and payload live in two hashes.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z, type ZodType } from 'zod';

export type Priority = 'critical' | 'high' | 'normal' | 'low';
export interface Job<P> {
  id: string;
  payload: P;
  priority: Priority;
  /** Which delivery this is: 1 the first time the job is reserved, 2 after one retry, … */
  attempt: number;
}

export interface PriorityQueueOptions<P> {
  redis: Redis;
  name: string;
  maxAttempts: number;
  visibilityTimeoutMs: number;
  backoffMs?: (attempt: number) => number;
  schema?: ZodType<P>;
  maxWaitMs?: number;
}

const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

const defaultBackoff = (attempt: number) => Math.min(60_000, 1000 * 2 ** (attempt - 1));

// Key layout, all under `${name}:`:
//   ready      sorted set id -> rank * 2^40 + seq (rank 0 = critical). ZRANGE 0 0 is the next job:
//              priority first, then the order the job became ready. seq comes from INCR, so
//              producers in the same millisecond are still ordered.
//   seq        the counter behind those scores
//   since      sorted set id -> readyAtMs * 4 + rank, only ready jobs: its first member is the
//              job that has waited longest (ties go to the higher priority)
//   payload    hash id -> payload JSON, written once (HSETNX is the dedupe), kept until ack
//   priority   hash id -> priority name
//   attempts   hash id -> deliveries so far
//   inflight   sorted set id -> lease deadline
//   delayed    sorted set id -> when the retry is due
//   dead       hash id -> reason
// Every move is one Lua script; scores are formatted with %.0f so no exponent notation reaches ZADD.

const SHARED = `
local B = 1099511627776
local rankOf = { critical = 0, high = 1, normal = 2, low = 3 }
local function fmt(n) return string.format('%.0f', math.floor(n)) end`;

// Puts id into ready with a fresh sequence number. Needs KEYS[1] ready, KEYS[2] seq,
// KEYS[3] since, KEYS[4] priority.
const TO_READY = `${SHARED}
local function toReady(id, now)
  local rank = rankOf[redis.call('HGET', KEYS[4], id) or 'normal'] or 2
  local seq = redis.call('INCR', KEYS[2])
  redis.call('ZADD', KEYS[1], fmt(rank * B + seq), id)
  redis.call('ZADD', KEYS[3], fmt(tonumber(now) * 4 + rank), id)
end`;

// KEYS: ready, seq, since, priority, payload. ARGV: id, json, priority, now.
const ENQUEUE = `${TO_READY}
if redis.call('HSETNX', KEYS[5], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
toReady(ARGV[1], ARGV[4])
return 1`;

// KEYS: ready, seq, since, priority, payload, attempts, inflight. ARGV: now, vt, maxWait (-1 off).
const RESERVE = `${SHARED}
local now, maxWait = tonumber(ARGV[1]), tonumber(ARGV[3])
local id = nil
if maxWait >= 0 then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  if oldest[1] then
    local score = tonumber(oldest[2])
    local rank = math.floor(score % 4)
    local since = math.floor((score - rank) / 4)
    if now - since >= maxWait then
      -- The head of that job's priority: as old or older, since the sequence follows readiness.
      local band = redis.call('ZRANGEBYSCORE', KEYS[1], fmt(rank * B), '(' .. fmt((rank + 1) * B), 'LIMIT', 0, 1)
      id = band[1]
    end
  end
end
if not id then id = redis.call('ZRANGE', KEYS[1], 0, 0)[1] end
if not id then return false end
redis.call('ZREM', KEYS[1], id)
redis.call('ZREM', KEYS[3], id)
local attempt = redis.call('HINCRBY', KEYS[6], id, 1)
redis.call('ZADD', KEYS[7], fmt(now + tonumber(ARGV[2])), id)
return { id, attempt, redis.call('HGET', KEYS[5], id), redis.call('HGET', KEYS[4], id) }`;

// KEYS[1] inflight, KEYS[2] attempts; ARGV[1] id, ARGV[2] attempt.
const HOLDS_LEASE = `
local function holds()
  return redis.call('ZSCORE', KEYS[1], ARGV[1]) and tonumber(redis.call('HGET', KEYS[2], ARGV[1])) == tonumber(ARGV[2])
end`;

// KEYS: inflight, attempts, payload, priority. ARGV: id, attempt.
const ACK = `${HOLDS_LEASE}
if not holds() then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`;

// KEYS: inflight, attempts. ARGV: id, attempt, deadline.
const EXTEND = `${HOLDS_LEASE}
if not holds() then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1`;

// KEYS: inflight, attempts, delayed, dead. ARGV: id, attempt, maxAttempts, due, reason.
const FAIL = `${HOLDS_LEASE}
if not holds() then return 'stale' end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ARGV[2]) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[5])
  return 'dead'
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
return 'retry'`;

// KEYS: ready, seq, since, priority, inflight, delayed, attempts, dead. ARGV: now, maxAttempts.
const RECOVER = `${TO_READY}
local now, moved = ARGV[1], 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)) do
  redis.call('ZREM', KEYS[5], id)
  local attempts = tonumber(redis.call('HGET', KEYS[7], id) or 0)
  if attempts >= tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[8], id, 'lease expired on delivery ' .. attempts .. ' of ' .. ARGV[2])
  else
    toReady(id, now)
    moved = moved + 1
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', now)) do
  redis.call('ZREM', KEYS[6], id)
  toReady(id, now)
  moved = moved + 1
end
return moved`;

// KEYS: ready, seq, since, priority, dead, attempts. ARGV: id, now.
const REDRIVE = `${TO_READY}
if redis.call('HDEL', KEYS[5], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[6], ARGV[1])
toReady(ARGV[1], ARGV[2])
return 1`;

export class PriorityQueue<P> {
  private readonly redis: Redis;
  private readonly backoffMs: (attempt: number) => number;

  constructor(private readonly options: PriorityQueueOptions<P>) {
    this.redis = options.redis;
    this.backoffMs = options.backoffMs ?? defaultBackoff;
  }

  async enqueue(payload: P, options: { priority?: Priority; id?: string } = {}): Promise<string> {
    const priority = options.priority ?? 'normal';
    if (!PRIORITIES.includes(priority)) {
      throw new Error(`enqueue: unknown priority ${JSON.stringify(priority)}; use one of ${PRIORITIES.join(', ')}`);
    }
    let data: unknown = payload;
    if (this.options.schema) {
      const result = this.options.schema.safeParse(payload);
      if (!result.success) throw new Error(`enqueue: payload does not match the schema:\n${z.prettifyError(result.error)}`);
      data = result.data;
    }
    const id = options.id ?? randomUUID();
    const keys = [...this.readyKeys(), this.key('payload')];
    await this.redis.eval(ENQUEUE, keys.length, ...keys, id, JSON.stringify(data), priority, Date.now());
    return id;
  }

  async reserve(): Promise<Job<P> | null> {
    const keys = [...this.readyKeys(), this.key('payload'), this.key('attempts'), this.key('inflight')];
    const reply = (await this.redis.eval(
      RESERVE,
      keys.length,
      ...keys,
      Date.now(),
      this.options.visibilityTimeoutMs,
      this.options.maxWaitMs ?? -1,
    )) as [string, number, string, string] | null;
    if (!reply) return null;
    const [id, attempt, json, priority] = reply;
    return { id, attempt: Number(attempt), priority: priority as Priority, payload: JSON.parse(json) as P };
  }

  async ack(job: Job<P>): Promise<boolean> {
    const keys = [this.key('inflight'), this.key('attempts'), this.key('payload'), this.key('priority')];
    return (await this.redis.eval(ACK, keys.length, ...keys, job.id, job.attempt)) === 1;
  }

  async extend(job: Job<P>, ms: number = this.options.visibilityTimeoutMs): Promise<boolean> {
    const keys = [this.key('inflight'), this.key('attempts')];
    return (await this.redis.eval(EXTEND, keys.length, ...keys, job.id, job.attempt, Date.now() + ms)) === 1;
  }

  async fail(job: Job<P>, reason: string): Promise<'retry' | 'dead'> {
    const due = Date.now() + this.backoffMs(job.attempt);
    const keys = [this.key('inflight'), this.key('attempts'), this.key('delayed'), this.key('dead')];
    const outcome = await this.redis.eval(FAIL, keys.length, ...keys, job.id, job.attempt, this.options.maxAttempts, due, reason);
    return outcome === 'dead' ? 'dead' : 'retry';
  }

  async recover(): Promise<number> {
    const keys = [...this.readyKeys(), this.key('inflight'), this.key('delayed'), this.key('attempts'), this.key('dead')];
    return Number(await this.redis.eval(RECOVER, keys.length, ...keys, Date.now(), this.options.maxAttempts));
  }

  async deadLetters(): Promise<Array<{ job: Job<P>; reason: string }>> {
    const dead = await this.redis.hgetall(this.key('dead'));
    const ids = Object.keys(dead);
    if (ids.length === 0) return [];
    const [payloads, priorities, attempts] = await Promise.all([
      this.redis.hmget(this.key('payload'), ...ids),
      this.redis.hmget(this.key('priority'), ...ids),
      this.redis.hmget(this.key('attempts'), ...ids),
    ]);
    return ids.map((id, i) => ({
      job: {
        id,
        attempt: Number(attempts[i] ?? 0),
        priority: (priorities[i] ?? 'normal') as Priority,
        payload: JSON.parse(payloads[i] ?? 'null') as P,
      },
      reason: dead[id]!,
    }));
  }

  async redrive(id: string): Promise<boolean> {
    const keys = [...this.readyKeys(), this.key('dead'), this.key('attempts')];
    return (await this.redis.eval(REDRIVE, keys.length, ...keys, id, Date.now())) === 1;
  }

  async counts(): Promise<{ ready: number; inflight: number; delayed: number; dead: number }> {
    const replies = await this.redis
      .multi()
      .zcard(this.key('ready'))
      .zcard(this.key('inflight'))
      .zcard(this.key('delayed'))
      .hlen(this.key('dead'))
      .exec();
    const n = (replies ?? []).map(([, value]) => Number(value));
    return { ready: n[0]!, inflight: n[1]!, delayed: n[2]!, dead: n[3]! };
  }

  private key(part: string) {
    // The name as a hash tag too: on a Redis Cluster every key of one script shares a slot.
    const { name } = this.options;
    return `${name}:{${name}}:${part}`;
  }

  /** The four keys every move into ready needs, in the order TO_READY expects them. */
  private readyKeys() {
    return [this.key('ready'), this.key('seq'), this.key('since'), this.key('priority')];
  }
}
