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

// Exponential backoff, capped, as a default: 1 s, 2 s, 4 s … up to a minute.
const defaultBackoff = (attempt: number) => Math.min(60_000, 1000 * 2 ** (attempt - 1));

// Key layout, all under `${name}:{${name}}:` (see key() for the braces):
//   ready:<priority>  list of ids, oldest first (RPUSH to enqueue, LPOP to take: FIFO for free)
//   since             hash id -> ms when the job became ready (only read when maxWaitMs is set)
//   jobs              hash id -> "<priority>:<payload JSON>", written once, kept until ack
//   attempts          hash id -> deliveries so far; (id, attempt) names one delivery, the lease
//   inflight          sorted set id -> lease deadline in ms
//   delayed           sorted set id -> ms when the retry is due
//   dead              hash id -> reason
// The priority is stored in front of the payload so the scripts can route a job back to its
// list with a string match: the mock's Lua has no cjson, and the job hash stays one write.
//
// Every state change is one Lua script. A script runs alone on the server, so no crash or
// second consumer can ever observe a job that has left one place and not reached the next.
// On a Redis Cluster a script may only touch keys of one slot, so every key of a queue carries
// the queue's name as its hash tag: the whole queue lives on one node, and other queues spread.

// KEYS: jobs, since, ready list of its priority. ARGV: id, "<priority>:<json>", now.
const ENQUEUE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;

// KEYS: ready x4 (critical first), since, attempts, inflight, jobs.
// ARGV: now, visibilityTimeoutMs, maxWaitMs (-1 when off).
// Taking the id off a ready list, counting the delivery and starting the lease happen in one
// step: a consumer that dies one line later still leaves the job in inflight, where recover()
// finds it once the lease runs out.
const RESERVE = `
local now, maxWait = tonumber(ARGV[1]), tonumber(ARGV[3])
local pick = nil
if maxWait >= 0 then
  -- Aging: each list is FIFO, so its head is its oldest job. The oldest head that has waited
  -- maxWaitMs goes first, whatever its priority; otherwise strict priority.
  local oldest = nil
  for i = 1, 4 do
    local head = redis.call('LINDEX', KEYS[i], 0)
    if head then
      local since = tonumber(redis.call('HGET', KEYS[5], head) or now)
      if now - since >= maxWait and (oldest == nil or since < oldest) then pick, oldest = i, since end
    end
  end
end
local id = nil
if pick then
  id = redis.call('LPOP', KEYS[pick])
else
  for i = 1, 4 do
    id = redis.call('LPOP', KEYS[i])
    if id then break end
  end
end
if not id then return false end
redis.call('HDEL', KEYS[5], id)
local attempt = redis.call('HINCRBY', KEYS[6], id, 1)
redis.call('ZADD', KEYS[7], now + tonumber(ARGV[2]), id)
return { id, attempt, redis.call('HGET', KEYS[8], id) }`;

// True when (id, attempt) still holds the lease: the job is in flight and has not been
// delivered again since. KEYS: inflight, attempts. ARGV: id, attempt.
const HOLDS_LEASE = `
local function holds()
  return redis.call('ZSCORE', KEYS[1], ARGV[1]) and tonumber(redis.call('HGET', KEYS[2], ARGV[1])) == tonumber(ARGV[2])
end`;

// KEYS: inflight, attempts, jobs. ARGV: id, attempt.
const ACK = `${HOLDS_LEASE}
if not holds() then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1`;

// KEYS: inflight, attempts. ARGV: id, attempt, new deadline.
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

// Shared by recover and redrive: put id at the tail of its priority's list.
// KEYS[1..4] are the ready lists, KEYS[5] since, KEYS[6] jobs.
const TO_READY = `
local order = { critical = 1, high = 2, normal = 3, low = 4 }
local function toReady(id, now)
  local priority = string.match(redis.call('HGET', KEYS[6], id) or '', '^(%a+):')
  redis.call('RPUSH', KEYS[order[priority] or 3], id)
  redis.call('HSET', KEYS[5], id, now)
end`;

// KEYS: ready x4, since, jobs, inflight, delayed, attempts, dead. ARGV: now, maxAttempts.
// A lease that ran out on the last allowed delivery is dead-lettered here: a job that kills
// its worker every time never reaches fail(), and must not be retried forever.
const RECOVER = `${TO_READY}
local now, moved = ARGV[1], 0
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[7], '-inf', now)) do
  redis.call('ZREM', KEYS[7], id)
  local attempts = tonumber(redis.call('HGET', KEYS[9], id) or 0)
  if attempts >= tonumber(ARGV[2]) then
    redis.call('HSET', KEYS[10], id, 'lease expired on delivery ' .. attempts .. ' of ' .. ARGV[2])
  else
    toReady(id, now)
    moved = moved + 1
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now)) do
  redis.call('ZREM', KEYS[8], id)
  toReady(id, now)
  moved = moved + 1
end
return moved`;

// KEYS: ready x4, since, jobs, dead, attempts. ARGV: id, now.
// A redriven job starts over with a full set of attempts: it is back because someone fixed
// the cause, not to fail once more.
const REDRIVE = `${TO_READY}
if redis.call('HDEL', KEYS[7], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[8], ARGV[1])
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
    // A known id is not queued again (HSETNX in the script): a producer that retries after a
    // timeout must not create a second job.
    await this.redis.eval(ENQUEUE, 3, this.key('jobs'), this.key('since'), this.readyKey(priority), id, `${priority}:${JSON.stringify(data)}`, Date.now());
    return id;
  }

  async reserve(): Promise<Job<P> | null> {
    const reply = (await this.redis.eval(
      RESERVE,
      8,
      ...this.readyKeys(),
      this.key('since'),
      this.key('attempts'),
      this.key('inflight'),
      this.key('jobs'),
      Date.now(),
      this.options.visibilityTimeoutMs,
      this.options.maxWaitMs ?? -1,
    )) as [string, number, string] | null;
    if (!reply) return null;
    const [id, attempt, stored] = reply;
    return { id, attempt: Number(attempt), ...this.decode(stored) };
  }

  async ack(job: Job<P>): Promise<boolean> {
    const keys = [this.key('inflight'), this.key('attempts'), this.key('jobs')];
    return (await this.redis.eval(ACK, keys.length, ...keys, job.id, job.attempt)) === 1;
  }

  /**
   * Heartbeat for a long job: the lease of this delivery now ends `ms` from now (the
   * visibility timeout by default). False when the lease was already lost.
   */
  async extend(job: Job<P>, ms: number = this.options.visibilityTimeoutMs): Promise<boolean> {
    const keys = [this.key('inflight'), this.key('attempts')];
    return (await this.redis.eval(EXTEND, keys.length, ...keys, job.id, job.attempt, Date.now() + ms)) === 1;
  }

  async fail(job: Job<P>, reason: string): Promise<'retry' | 'dead'> {
    // The retry is a row in a sorted set scored by when it is due, not a sleep: the consumer
    // is free at once, and a crash in between loses nothing.
    const due = Date.now() + this.backoffMs(job.attempt);
    const keys = [this.key('inflight'), this.key('attempts'), this.key('delayed'), this.key('dead')];
    const outcome = await this.redis.eval(FAIL, keys.length, ...keys, job.id, job.attempt, this.options.maxAttempts, due, reason);
    // 'stale': this delivery's lease was lost and the job is already queued again; nothing
    // changed, and from this consumer's point of view it will be retried.
    return outcome === 'dead' ? 'dead' : 'retry';
  }

  async recover(): Promise<number> {
    const keys = [...this.readyKeys(), this.key('since'), this.key('jobs'), this.key('inflight'), this.key('delayed'), this.key('attempts'), this.key('dead')];
    return Number(await this.redis.eval(RECOVER, keys.length, ...keys, Date.now(), this.options.maxAttempts));
  }

  async deadLetters(): Promise<Array<{ job: Job<P>; reason: string }>> {
    const dead = await this.redis.hgetall(this.key('dead'));
    const ids = Object.keys(dead);
    if (ids.length === 0) return [];
    const [stored, attempts] = await Promise.all([this.redis.hmget(this.key('jobs'), ...ids), this.redis.hmget(this.key('attempts'), ...ids)]);
    return ids.map((id, i) => ({
      job: { id, attempt: Number(attempts[i] ?? 0), ...this.decode(stored[i] ?? 'normal:null') },
      reason: dead[id]!,
    }));
  }

  async redrive(id: string): Promise<boolean> {
    const keys = [...this.readyKeys(), this.key('since'), this.key('jobs'), this.key('dead'), this.key('attempts')];
    return (await this.redis.eval(REDRIVE, keys.length, ...keys, id, Date.now())) === 1;
  }

  async counts(): Promise<{ ready: number; inflight: number; delayed: number; dead: number }> {
    const replies = await this.redis
      .multi()
      .llen(this.readyKey('critical'))
      .llen(this.readyKey('high'))
      .llen(this.readyKey('normal'))
      .llen(this.readyKey('low'))
      .zcard(this.key('inflight'))
      .zcard(this.key('delayed'))
      .hlen(this.key('dead'))
      .exec();
    const n = (replies ?? []).map(([, value]) => Number(value));
    return { ready: n[0]! + n[1]! + n[2]! + n[3]!, inflight: n[4]!, delayed: n[5]!, dead: n[6]! };
  }

  private key(part: string) {
    // A cluster hashes only the part inside the first {…}: `emails:{emails}:jobs` and
    // `emails:{emails}:dead` share a slot, so each script and MULTI of a queue stays in one
    // slot. The name is repeated inside the tag so that keys still start with `${name}:`.
    const { name } = this.options;
    return `${name}:{${name}}:${part}`;
  }

  private readyKey(priority: Priority) {
    return this.key(`ready:${priority}`);
  }

  private readyKeys() {
    return PRIORITIES.map((priority) => this.readyKey(priority));
  }

  private decode(stored: string): { priority: Priority; payload: P } {
    const colon = stored.indexOf(':');
    return { priority: stored.slice(0, colon) as Priority, payload: JSON.parse(stored.slice(colon + 1)) as P };
  }
}
