/**
 * @correct Each delivery gets a random token carried in the Job and a lease key `lease:<id>` holding that token with a PX TTL (instead of a sorted set of deadlines compared by attempt number); in flight is a hash id -> current token, recover() re-queues members whose lease key is gone, and extend() is a guarded SET … PX.
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
  /** Names this delivery: ack, fail and extend act only while the lease still holds it. */
  token?: string;
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
//   ready:<priority>  list of ids, oldest first
//   since             hash id -> ms when the job became ready (aging)
//   jobs              hash id -> "<priority>:<payload JSON>", written once, kept until ack
//   attempts          hash id -> deliveries so far
//   inflight          hash id -> token of the current delivery
//   lease:<id>        string = that token, with a PX TTL of the visibility timeout: while it
//                     exists the delivery holds the job; when it is gone the lease ran out
//   delayed           sorted set id -> ms when the retry is due
//   dead              hash id -> reason
// The lease key of a job popped inside a script is built from a prefix passed in KEYS, so it
// carries any client key prefix too. Every move is one Lua script.

// KEYS: jobs, since, ready list. ARGV: id, "<priority>:<json>", now.
const ENQUEUE = `
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('RPUSH', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1`;

// KEYS: ready x4, since, attempts, inflight, jobs, lease prefix.
// ARGV: now, visibilityTimeoutMs, maxWaitMs (-1 off), token.
const RESERVE = `
local now, maxWait = tonumber(ARGV[1]), tonumber(ARGV[3])
local pick = nil
if maxWait >= 0 then
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
redis.call('HSET', KEYS[7], id, ARGV[4])
redis.call('SET', KEYS[9] .. id, ARGV[4], 'PX', ARGV[2])
return { id, attempt, redis.call('HGET', KEYS[8], id) }`;

// KEYS[1] inflight, KEYS[2] lease:<id>. ARGV[1] id, ARGV[2] token.
// The delivery holds the job while it is the current one and its lease key still exists.
const HOLDS_LEASE = `
local function current() return redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] end
local function holds() return current() and redis.call('GET', KEYS[2]) == ARGV[2] end`;

// KEYS: inflight, lease, attempts, jobs. ARGV: id, token.
const ACK = `${HOLDS_LEASE}
if not current() then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1`;

// KEYS: inflight, lease. ARGV: id, token, ms.
const EXTEND = `${HOLDS_LEASE}
if not holds() then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1`;

// KEYS: inflight, lease, attempts, delayed, dead. ARGV: id, token, maxAttempts, due, reason.
const FAIL = `${HOLDS_LEASE}
if not current() then return 'stale' end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
if tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or 0) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[5])
  return 'dead'
end
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
return 'retry'`;

// Shared by recover and redrive. KEYS[1..4] ready lists, KEYS[5] since, KEYS[6] jobs.
const TO_READY = `
local order = { critical = 1, high = 2, normal = 3, low = 4 }
local function toReady(id, now)
  local priority = string.match(redis.call('HGET', KEYS[6], id) or '', '^(%a+):')
  redis.call('RPUSH', KEYS[order[priority] or 3], id)
  redis.call('HSET', KEYS[5], id, now)
end`;

// KEYS: ready x4, since, jobs, inflight, delayed, attempts, dead, lease prefix.
// ARGV: now, maxAttempts.
const RECOVER = `${TO_READY}
local now, moved = ARGV[1], 0
local inflight = redis.call('HGETALL', KEYS[7])
for i = 1, #inflight, 2 do
  local id, token = inflight[i], inflight[i + 1]
  if redis.call('GET', KEYS[11] .. id) ~= token then
    redis.call('HDEL', KEYS[7], id)
    local attempts = tonumber(redis.call('HGET', KEYS[9], id) or 0)
    if attempts >= tonumber(ARGV[2]) then
      redis.call('HSET', KEYS[10], id, 'lease expired on delivery ' .. attempts .. ' of ' .. ARGV[2])
    else
      toReady(id, now)
      moved = moved + 1
    end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[8], '-inf', now)) do
  redis.call('ZREM', KEYS[8], id)
  toReady(id, now)
  moved = moved + 1
end
return moved`;

// KEYS: ready x4, since, jobs, dead, attempts. ARGV: id, now.
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
    await this.redis.eval(ENQUEUE, 3, this.key('jobs'), this.key('since'), this.readyKey(priority), id, `${priority}:${JSON.stringify(data)}`, Date.now());
    return id;
  }

  async reserve(): Promise<Job<P> | null> {
    const token = randomUUID();
    const keys = [...this.readyKeys(), this.key('since'), this.key('attempts'), this.key('inflight'), this.key('jobs'), this.key('lease:')];
    const reply = (await this.redis.eval(
      RESERVE,
      keys.length,
      ...keys,
      Date.now(),
      Math.max(1, Math.ceil(this.options.visibilityTimeoutMs)),
      this.options.maxWaitMs ?? -1,
      token,
    )) as [string, number, string] | null;
    if (!reply) return null;
    const [id, attempt, stored] = reply;
    return { id, attempt: Number(attempt), ...this.decode(stored), token };
  }

  async ack(job: Job<P>): Promise<boolean> {
    const keys = [this.key('inflight'), this.leaseKey(job.id), this.key('attempts'), this.key('jobs')];
    return (await this.redis.eval(ACK, keys.length, ...keys, job.id, job.token ?? '')) === 1;
  }

  async extend(job: Job<P>, ms: number = this.options.visibilityTimeoutMs): Promise<boolean> {
    const keys = [this.key('inflight'), this.leaseKey(job.id)];
    return (await this.redis.eval(EXTEND, keys.length, ...keys, job.id, job.token ?? '', Math.max(1, Math.ceil(ms)))) === 1;
  }

  async fail(job: Job<P>, reason: string): Promise<'retry' | 'dead'> {
    const due = Date.now() + this.backoffMs(job.attempt);
    const keys = [this.key('inflight'), this.leaseKey(job.id), this.key('attempts'), this.key('delayed'), this.key('dead')];
    const outcome = await this.redis.eval(FAIL, keys.length, ...keys, job.id, job.token ?? '', this.options.maxAttempts, due, reason);
    return outcome === 'dead' ? 'dead' : 'retry';
  }

  async recover(): Promise<number> {
    const keys = [
      ...this.readyKeys(),
      this.key('since'),
      this.key('jobs'),
      this.key('inflight'),
      this.key('delayed'),
      this.key('attempts'),
      this.key('dead'),
      this.key('lease:'),
    ];
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
      .hlen(this.key('inflight'))
      .zcard(this.key('delayed'))
      .hlen(this.key('dead'))
      .exec();
    const n = (replies ?? []).map(([, value]) => Number(value));
    return { ready: n[0]! + n[1]! + n[2]! + n[3]!, inflight: n[4]!, delayed: n[5]!, dead: n[6]! };
  }

  private key(part: string) {
    // The name as a hash tag too: on a Redis Cluster every key of one script shares a slot.
    const { name } = this.options;
    return `${name}:{${name}}:${part}`;
  }

  private leaseKey(id: string) {
    return this.key(`lease:${id}`);
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
