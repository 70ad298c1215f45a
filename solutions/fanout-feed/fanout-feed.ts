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

// One round trip per this many followers: a 50k-follower fan-out becomes 50 round trips, not 50k,
// and no single batch buffers an unbounded reply.
const FEEDS_PER_TRIP = 1_000;

// On a Redis Cluster the feeds and timelines below spread over every node (one key per user),
// so their writes and reads are never one pipeline (ioredis refuses a pipeline whose keys live
// on different nodes) but commands sent together with Promise.all: one round trip all the same.

const feedKey = (userId: string) => `feed:${userId}`;
// Posts that were NOT fanned out (their author was a celebrity when they were published).
// Readers pull these; pushed posts never land here, so a post is served by exactly one path.
const pulledKey = (authorId: string) => `pulled:${authorId}`;
// Authors who have a pulled timeline. An author stays here after falling below the threshold,
// because the posts they published as a celebrity still live only in their pulled timeline.
const PULL_AUTHORS = 'pull-authors';
// The queue and its job hashes share the hash tag {fanout}: on a cluster they sit in one slot,
// so a job and its queue entry are written, and removed, in one MULTI.
const QUEUE = '{fanout}:queue';
const jobKey = (postId: string) => `{fanout}:job:${postId}`;

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

    if (followers.length >= this.celebrityThreshold) {
      // One write however many followers: readers merge this timeline in at read time.
      await Promise.all([
        ...push(this.redis, pulledKey(post.authorId), post, this.feedLength),
        this.redis.sadd(PULL_AUTHORS, post.authorId),
      ]);
      return { fannedOutTo: 0 };
    }

    if (this.queued) {
      // The job lives in Redis, not in this process, so a restarted worker finds it. Both keys or
      // neither: a queued id without its job would read as a deleted post.
      await this.redis
        .multi()
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
    const [candidates, isPulled] = await Promise.all([
      readRange(this.redis, feedKey(userId), after, limit + 1),
      following.length > 0 ? this.redis.smismember(PULL_AUTHORS, ...following) : [],
    ]);

    // Round trip 2: every pulled timeline at once, never one trip per celebrity.
    const pulledFrom = following.filter((_, i) => isPulled[i] === 1);
    const pulled = await Promise.all(
      pulledFrom.map((authorId) => readRange(this.redis, pulledKey(authorId), after, limit + 1)),
    );
    candidates.push(...pulled.flat());

    // Merge. A post can sit in both a feed and a pulled timeline only if something went wrong
    // upstream; deduplicating by id keeps one bad write from showing a post twice.
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
    await Promise.all([
      this.redis.multi().lrem(QUEUE, 0, post.id).del(jobKey(post.id)).exec().then(throwOnError),
      this.redis.zrem(pulledKey(post.authorId), post.id),
    ]);
    for (const chunk of chunks(followers, FEEDS_PER_TRIP)) {
      await Promise.all(chunk.map((followerId) => this.redis.zrem(feedKey(followerId), post.id)));
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
    const maxFeeds = options.maxFeeds ?? FEEDS_PER_TRIP;
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

      // Progress is recorded only once every feed of the batch has the post, in a round trip
      // of its own: on a cluster the feeds and the job live on different nodes, so nothing
      // orders a write to one after a write to another but waiting for the replies.
      await this.pushToFeeds(batch, post);
      if (batch.length === remaining.length) {
        await this.redis.multi().lrem(QUEUE, 0, postId).del(jobKey(postId)).exec().then(throwOnError);
      } else {
        await this.redis.hset(jobKey(postId), 'after', batch.at(-1)!);
      }
      feedsWritten += batch.length;
    }

    return { feedsWritten, done: (await this.redis.llen(QUEUE)) === 0 };
  }

  private async followersOf(authorId: string): Promise<string[]> {
    // A user's home feed shows the accounts they follow, not their own posts.
    return (await this.graph.followers(authorId)).filter((id) => id !== authorId);
  }

  private async pushToFeeds(followers: string[], post: Position) {
    for (const chunk of chunks(followers, FEEDS_PER_TRIP)) {
      await Promise.all(chunk.flatMap((followerId) => push(this.redis, feedKey(followerId), post, this.feedLength)));
    }
  }
}

type Replies = Array<[Error | null, unknown]>;

/**
 * A post's writes into one sorted set: ZADD, then trim to the newest `feedLength`. Score =
 * createdAt; equal scores sort by member, so Redis keeps our exact order, and trimming the lowest
 * ranks always drops the oldest entries. Both commands name one key, so even on a cluster they
 * travel on one connection to one node, and Redis runs them in the order sent.
 */
function push(redis: Redis, key: string, post: Position, feedLength: number): Promise<unknown>[] {
  return [redis.zadd(key, post.createdAt, post.id), redis.zremrangebyrank(key, 0, -feedLength - 1)];
}

/**
 * The first `limit` entries of a key after `after`, newest first. With a cursor that is two
 * reads, sent together: the entries sharing the cursor's createdAt (a few at most, and the key is
 * bounded anyway) and the `limit` entries strictly older. Both leave before this awaits, so they
 * share the round trip of whatever the caller sends alongside.
 */
async function readRange(redis: Redis, key: string, after: Position | null, limit: number): Promise<Position[]> {
  const replies = await Promise.all(
    after === null
      ? [redis.zrevrange(key, 0, limit - 1, 'WITHSCORES')]
      : [
          redis.zrevrangebyscore(key, after.createdAt, after.createdAt, 'WITHSCORES'),
          redis.zrevrangebyscore(key, `(${after.createdAt}`, '-inf', 'WITHSCORES', 'LIMIT', 0, limit),
        ],
  );
  const positions: Position[] = [];
  for (const flat of replies) {
    for (let i = 0; i < flat.length; i += 2) {
      const position = { id: flat[i]!, createdAt: Number(flat[i + 1]) };
      if (after === null || isAfter(position, after)) positions.push(position);
    }
  }
  return positions;
}

function throwOnError(replies: Replies | null): Replies {
  if (replies === null) throw new Error('MULTI was discarded');
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
