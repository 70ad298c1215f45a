/**
 * @correct Every post, pushed or not, is also kept in a bounded per-author timeline, and readers pull the timelines of followed authors who were ever celebrities and deduplicate by id, instead of keeping a separate timeline of never-pushed posts only.
 */
import type { Redis } from 'ioredis';

export interface Post {
  id: string;
  authorId: string;
  createdAt: number;
  text: string;
}

export interface SocialGraph {
  followers(userId: string): Promise<string[]>;
  following(userId: string): Promise<string[]>;
}

export interface PostsTable {
  /** Rows in any order; ids with no row are simply absent. */
  byIds(ids: string[]): Promise<Post[]>;
}

export interface FeedServiceOptions {
  redis: Redis;
  graph: SocialGraph;
  posts: PostsTable;
  celebrityThreshold: number;
  feedLength: number;
  fanout?: 'inline' | 'queued';
  fanoutLeaseMs?: number;
}

export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 100;

// One pipeline per this many followers: a 50k-follower fan-out becomes 50 round trips, not 50k,
// and no single pipeline buffers an unbounded reply.
const PIPELINE_CHUNK = 1_000;

const feedKey = (userId: string) => `feed:${userId}`;
// Every author's own recent posts, bounded by feedLength, whether they were pushed or not.
// Readers pull it only for authors who were ever celebrities; for an author who crossed the
// threshold it also holds posts already pushed, so the read merge deduplicates by id.
const pulledKey = (authorId: string) => `timeline:${authorId}`;
// Authors who were a celebrity when they published at least once. An author stays here after
// falling below the threshold: their celebrity-era posts live only in their timeline.
const PULL_AUTHORS = 'pull-authors';
const QUEUE = 'fanout:queue';
const jobKey = (postId: string) => `fanout:job:${postId}`;

/** A position in the total order of a feed: newer createdAt first, then larger id first. */
interface Position {
  createdAt: number;
  id: string;
}

/** True when `a` comes after `b` in the feed (is older, or equally old with a smaller id). */
const isAfter = (a: Position, b: Position) =>
  a.createdAt < b.createdAt || (a.createdAt === b.createdAt && a.id < b.id);

const newestFirst = (a: Position, b: Position) => (isAfter(a, b) ? 1 : isAfter(b, a) ? -1 : 0);

export class FeedService {
  private readonly redis: Redis;
  private readonly graph: SocialGraph;
  private readonly posts: PostsTable;
  private readonly celebrityThreshold: number;
  private readonly feedLength: number;
  private readonly queued: boolean;

  constructor(options: FeedServiceOptions) {
    this.redis = options.redis;
    this.graph = options.graph;
    this.posts = options.posts;
    this.celebrityThreshold = options.celebrityThreshold;
    this.feedLength = options.feedLength;
    this.queued = options.fanout === 'queued';
    // fanoutLeaseMs is not needed here: the worker never claims a job, it peeks at the head of
    // the queue and removes the job only once every feed has it (see drainFanout).
  }

  async publish(post: Post): Promise<{ fannedOutTo: number }> {
    const followers = await this.followersOf(post.authorId);
    const celebrity = followers.length >= this.celebrityThreshold;

    // Every post goes into its author's own bounded timeline, one write.
    const own = this.redis
      .pipeline()
      .zadd(pulledKey(post.authorId), post.createdAt, post.id)
      .zremrangebyrank(pulledKey(post.authorId), 0, -this.feedLength - 1);
    // A celebrity's followers merge this timeline in at read time.
    if (celebrity) own.sadd(PULL_AUTHORS, post.authorId);
    throwOnError(await own.exec());
    if (celebrity) return { fannedOutTo: 0 };

    if (this.queued) {
      // The job lives in Redis, not in this process, so a restarted worker finds it.
      await this.redis
        .pipeline()
        .hset(jobKey(post.id), { authorId: post.authorId, createdAt: post.createdAt, after: '' })
        .rpush(QUEUE, post.id)
        .exec()
        .then(throwOnError);
      return { fannedOutTo: followers.length };
    }

    await this.pushToFeeds(followers, post);
    return { fannedOutTo: followers.length };
  }

  async getFeed(
    userId: string,
    options: { limit?: number; cursor?: string } = {},
  ): Promise<{ posts: Post[]; nextCursor: string | null }> {
    const limit = options.limit ?? DEFAULT_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new RangeError(`limit must be an integer from 1 to ${MAX_LIMIT}, got ${limit}`);
    }
    const after = options.cursor === undefined ? null : decodeCursor(options.cursor);

    const following = (await this.graph.following(userId)).filter((id) => id !== userId);

    // Round trip 1: the precomputed feed, and which followed accounts have pulled posts.
    const first = this.redis.pipeline();
    const feedReads = queueRange(first, feedKey(userId), after, limit + 1);
    if (following.length > 0) first.smismember(PULL_AUTHORS, ...following);
    const replies = throwOnError(await first.exec());
    const candidates = readRange(replies, 0, feedReads, after);
    const isPulled = following.length > 0 ? (replies.at(-1)![1] as number[]) : [];

    // Round trip 2: every pulled timeline at once, never one trip per celebrity.
    const pulledFrom = following.filter((_, i) => isPulled[i] === 1);
    if (pulledFrom.length > 0) {
      const second = this.redis.pipeline();
      for (const authorId of pulledFrom) queueRange(second, pulledKey(authorId), after, limit + 1);
      const pulled = throwOnError(await second.exec());
      candidates.push(...readRange(pulled, 0, pulled.length, after));
    }

    // Merge. A post by an author who crossed the threshold upward sits both in the reader's
    // feed (pushed before the crossing) and in the author's timeline: deduplicate by id.
    // Each source was read one entry past the page, so one more than `limit` here means
    // another page exists.
    const unique = [...new Map(candidates.map((c) => [c.id, c])).values()].sort(newestFirst);
    const page = unique.slice(0, limit);

    // One batched read for the page, never one per post.
    const rows = page.length > 0 ? await this.posts.byIds(page.map((p) => p.id)) : [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    // A post deleted from the table but not yet from the feed is skipped, not an error.
    const posts = page.flatMap((p) => byId.get(p.id) ?? []);

    // The cursor is the last position served, not a count: posts published while the user
    // scrolls land before it and cannot shift the next page.
    const last = page.at(-1);
    const nextCursor = unique.length > limit && last ? encodeCursor(last) : null;
    return { posts, nextCursor };
  }

  async deletePost(post: Post): Promise<void> {
    const followers = await this.graph.followers(post.authorId);
    // Drop a pending fan-out first, so a worker cannot write the post back afterwards.
    await this.redis
      .pipeline()
      .lrem(QUEUE, 0, post.id)
      .del(jobKey(post.id))
      .zrem(pulledKey(post.authorId), post.id)
      .exec()
      .then(throwOnError);
    for (const chunk of chunks(followers, PIPELINE_CHUNK)) {
      const pipeline = this.redis.pipeline();
      for (const followerId of chunk) pipeline.zrem(feedKey(followerId), post.id);
      throwOnError(await pipeline.exec());
    }
  }

  async unfollow(followerId: string, authorId: string): Promise<void> {
    // Feed entries are post ids only, so ask the table (one batched read) whose they are.
    // Pulled posts need nothing: the reader no longer follows the author, so never pulls them.
    const ids = await this.redis.zrange(feedKey(followerId), 0, -1);
    if (ids.length === 0) return;
    const theirs = (await this.posts.byIds(ids)).filter((p) => p.authorId === authorId).map((p) => p.id);
    if (theirs.length > 0) await this.redis.zrem(feedKey(followerId), ...theirs);
  }

  /**
   * Performs queued fan-out: writes at most `maxFeeds` feeds, oldest job first.
   *
   * The job is never popped before its work is done: the worker peeks at the head, writes a
   * batch of feeds, records how far it got, and removes the job only after the last batch. A
   * worker that dies anywhere in between leaves the job in place, and the next one redoes at
   * most one batch. Redoing is harmless because ZADD of the same member and score is a no-op.
   */
  async drainFanout(options: { maxFeeds?: number } = {}): Promise<{ feedsWritten: number; done: boolean }> {
    const maxFeeds = options.maxFeeds ?? PIPELINE_CHUNK;
    let feedsWritten = 0;

    while (feedsWritten < maxFeeds) {
      const postId = await this.redis.lindex(QUEUE, 0);
      if (postId === null) break;
      const job = await this.redis.hgetall(jobKey(postId));
      if (!job.authorId) {
        // Deleted while queued (or finished by another worker): LREM by value, not LPOP, so a
        // concurrent worker's head is never removed by mistake.
        await this.redis.lrem(QUEUE, 0, postId);
        continue;
      }

      // Followers are read now, not at publish time, so someone who unfollowed in the meantime
      // is skipped. Progress is "the last follower id done", which stays correct when the
      // follower list changes between batches (a position would shift).
      const after = job.after ?? '';
      const remaining = (await this.followersOf(job.authorId)).filter((id) => id > after).sort();
      const batch = remaining.slice(0, maxFeeds - feedsWritten);
      const post = { id: postId, createdAt: Number(job.createdAt) };

      const pipeline = this.redis.pipeline();
      for (const followerId of batch) queuePush(pipeline, feedKey(followerId), post, this.feedLength);
      if (batch.length === remaining.length) {
        pipeline.lrem(QUEUE, 0, postId).del(jobKey(postId));
      } else {
        // Last in the pipeline: commands run in order, so progress is recorded only if every
        // feed write before it ran.
        pipeline.hset(jobKey(postId), 'after', batch.at(-1)!);
      }
      throwOnError(await pipeline.exec());
      feedsWritten += batch.length;
    }

    return { feedsWritten, done: (await this.redis.llen(QUEUE)) === 0 };
  }

  private async followersOf(authorId: string): Promise<string[]> {
    // A user's home feed shows the accounts they follow, not their own posts.
    return (await this.graph.followers(authorId)).filter((id) => id !== authorId);
  }

  private async pushToFeeds(followers: string[], post: Position) {
    for (const chunk of chunks(followers, PIPELINE_CHUNK)) {
      const pipeline = this.redis.pipeline();
      for (const followerId of chunk) queuePush(pipeline, feedKey(followerId), post, this.feedLength);
      throwOnError(await pipeline.exec());
    }
  }
}

type Pipeline = ReturnType<Redis['pipeline']>;
type Replies = Array<[Error | null, unknown]>;

function queuePush(pipeline: Pipeline, key: string, post: Position, feedLength: number) {
  // Score = createdAt; equal scores sort by member, so Redis keeps our exact order, and trimming
  // the lowest ranks always drops the oldest entries.
  pipeline.zadd(key, post.createdAt, post.id).zremrangebyrank(key, 0, -feedLength - 1);
}

/**
 * Queues the reads that return the first `limit` entries of a key after `after`, newest first.
 * With a cursor that is two reads: the entries sharing the cursor's createdAt (a few at most,
 * and the key is bounded anyway) and the `limit` entries strictly older. Returns how many
 * commands it queued.
 */
function queueRange(pipeline: Pipeline, key: string, after: Position | null, limit: number): number {
  if (after === null) {
    pipeline.zrevrange(key, 0, limit - 1, 'WITHSCORES');
    return 1;
  }
  pipeline
    .zrevrangebyscore(key, after.createdAt, after.createdAt, 'WITHSCORES')
    .zrevrangebyscore(key, `(${after.createdAt}`, '-inf', 'WITHSCORES', 'LIMIT', 0, limit);
  return 2;
}

/** Positions from `count` WITHSCORES replies starting at `start`, keeping those after `after`. */
function readRange(replies: Replies, start: number, count: number, after: Position | null): Position[] {
  const positions: Position[] = [];
  for (const [, reply] of replies.slice(start, start + count)) {
    const flat = reply as string[];
    for (let i = 0; i < flat.length; i += 2) {
      const position = { id: flat[i]!, createdAt: Number(flat[i + 1]) };
      if (after === null || isAfter(position, after)) positions.push(position);
    }
  }
  return positions;
}

function throwOnError(replies: Replies | null): Replies {
  if (replies === null) throw new Error('pipeline was discarded');
  for (const [error] of replies) if (error) throw error;
  return replies;
}

function* chunks<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

// The cursor is opaque to clients (base64url of JSON) so they cannot build one by hand, and
// everything that does not decode to a position is rejected rather than read as "page one".
function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id])).toString('base64url');
}

function decodeCursor(cursor: string): Position {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  if (
    !Array.isArray(value) ||
    value.length !== 2 ||
    typeof value[0] !== 'number' ||
    !Number.isFinite(value[0]) ||
    typeof value[1] !== 'string'
  ) {
    throw new RangeError(`invalid cursor: ${JSON.stringify(cursor)}`);
  }
  return { createdAt: value[0], id: value[1] };
}
