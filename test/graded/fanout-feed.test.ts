import { describe, expect, test } from 'vitest';
import { FeedService, type Post } from '@impl/fanout-feed/fanout-feed.ts';
import {
  controlled,
  crashAtEveryTrip,
  createLabRedis,
  describeCut,
  raceAtEveryTrip,
  randomId,
  randomInteger,
  randomText,
  settle,
  shuffle,
  useFakeClock,
  type LabRedis,
} from '../kit/index.ts';

type Redis = LabRedis['redis'];

/** The social graph, the source of truth, as a fake the test edits and counts. */
function socialGraph() {
  const edges = new Map<string, Set<string>>(); // author -> followers
  const followersOf = (author: string) => edges.get(author) ?? edges.set(author, new Set()).get(author)!;
  const graph = {
    // Graph services answer in no particular order.
    followers: controlled(async (userId: string) => shuffle([...followersOf(userId)])),
    following: controlled(async (userId: string) =>
      shuffle([...edges].filter(([, followers]) => followers.has(userId)).map(([author]) => author)),
    ),
  };
  return {
    graph,
    follow(follower: string, author: string) {
      followersOf(author).add(follower);
    },
    cut(follower: string, author: string) {
      followersOf(author).delete(follower);
    },
    graphCalls: () => graph.followers.callCount + graph.following.callCount,
  };
}

/** The posts table: rows in a Map, byIds counted and answering in any order, as SQL `IN` does. */
function postsTable() {
  const rows = new Map<string, Post>();
  const byIds = controlled(async (ids: string[]) =>
    shuffle(ids.flatMap((id) => (rows.has(id) ? [structuredClone(rows.get(id)!)] : []))),
  );
  return { rows, byIds };
}

interface SetupOptions {
  celebrityThreshold?: number;
  feedLength?: number;
  queued?: boolean;
}

const LEASE_MS = 5_000;

async function setup(options: SetupOptions = {}) {
  const lab = await createLabRedis();
  const social = socialGraph();
  const table = postsTable();
  const celebrityThreshold = options.celebrityThreshold ?? randomInteger(5, 8);
  const feedLength = options.feedLength ?? randomInteger(40, 60);
  const make = (redis: Redis = lab.redis) =>
    new FeedService({
      redis,
      graph: social.graph,
      posts: table,
      celebrityThreshold,
      feedLength,
      ...(options.queued && { fanout: 'queued' as const, fanoutLeaseMs: LEASE_MS }),
    });
  const service = make();
  let clock = 1_700_000_000_000 + randomInteger(0, 1_000_000_000);

  return {
    lab,
    ...social,
    table,
    service,
    make,
    celebrityThreshold,
    feedLength,
    /** A user followed by `count` fresh followers (or the ones given). */
    author(count: number, followers: string[] = []) {
      const id = randomId('author');
      const all = [...followers, ...Array.from({ length: count }, () => randomId('user'))];
      for (const follower of all) social.follow(follower, id);
      return { id, followers: all };
    },
    /** A post in the table, newer than every post made so far unless createdAt is given. */
    post(authorId: string, createdAt?: number): Post {
      clock += randomInteger(1, 5_000);
      const post = { id: randomId('post'), authorId, createdAt: createdAt ?? clock, text: randomText(5) };
      table.rows.set(post.id, post);
      return post;
    },
    now: () => clock,
  };
}

/** Newest first: createdAt descending, then id descending (the order the README defines). */
function newestFirst(posts: Post[]): Post[] {
  return [...posts].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

const ids = (posts: Post[]) => posts.map((post) => post.id);

/** Every page of a user's feed, following nextCursor; stops after a safe number of pages. */
async function readAll(service: FeedService, userId: string, limit: number) {
  const pages: Post[][] = [];
  let cursor: string | undefined;
  for (let i = 0; i < 200; i++) {
    const page = await service.getFeed(userId, { limit, ...(cursor !== undefined && { cursor }) });
    pages.push(page.posts);
    if (page.nextCursor === null) return { posts: pages.flat(), pages };
    cursor = page.nextCursor;
  }
  throw new Error(
    `getFeed returned a nextCursor on 200 pages in a row for a feed of a few dozen posts: it never returns null, so a client would scroll forever`,
  );
}

/** Describes how a feed differs from what was expected, for failure messages. */
function difference(got: Post[], expected: Post[]) {
  const seen = new Map<string, number>();
  for (const id of ids(got)) seen.set(id, (seen.get(id) ?? 0) + 1);
  const missing = expected.filter((post) => !seen.has(post.id)).length;
  const repeated = [...seen.values()].filter((n) => n > 1).length;
  const extra = got.filter((post) => !expected.some((e) => e.id === post.id)).length;
  const parts = [`${got.length} posts instead of ${expected.length}`];
  if (missing) parts.push(`${missing} missing`);
  if (repeated) parts.push(`${repeated} shown more than once`);
  if (extra) parts.push(`${extra} that should not be there`);
  if (!missing && !repeated && !extra) parts.push('the right posts in the wrong order');
  return parts.join(', ');
}

/**
 * Where a post id is held in Redis, whatever the layout: keys named after it, and every
 * element (string value, list item, set or sorted set member, hash field or value) containing it.
 */
async function holders(lab: LabRedis, postId: string) {
  let keys = 0;
  let entries = 0;
  for (const { key, items } of await lab.dump()) {
    const found = items.filter((item) => item.includes(postId)).length;
    if (found > 0 || key.includes(postId)) keys++;
    entries += found;
  }
  return { keys, entries };
}

/** The most post ids of `posts` any single key holds. */
async function largestKey(lab: LabRedis, posts: Post[]) {
  let largest = { key: '', count: 0 };
  for (const { key, items } of await lab.dump()) {
    const count = posts.filter((post) => items.some((item) => item.includes(post.id))).length;
    if (count > largest.count) largest = { key, count };
  }
  return largest;
}

/** Runs queued fan-out until drainFanout reports the queue empty. */
async function drainAll(service: FeedService, maxFeeds?: number) {
  for (let i = 0; i < 500; i++) {
    const result = await service.drainFanout(maxFeeds === undefined ? {} : { maxFeeds });
    if (result.done) return;
  }
  throw new Error('drainFanout() was called 500 times and never reported done: true, for a queue of a few posts');
}

describe('core', () => {
  test("an ordinary author's post is pushed into each follower's precomputed feed", async () => {
    const w = await setup();
    const author = w.author(randomInteger(2, w.celebrityThreshold - 1));
    const post = w.post(author.id);

    const result = await w.service.publish(post);

    expect(
      result,
      `publish() of an author with ${author.followers.length} followers (celebrityThreshold ${w.celebrityThreshold}) must report fannedOutTo: ${author.followers.length}, the number of feeds it wrote`,
    ).toEqual({ fannedOutTo: author.followers.length });
    const held = await holders(w.lab, post.id);
    expect(
      held.entries,
      `the post id is in ${held.entries} places in Redis, but the author has ${author.followers.length} followers: an ordinary author's post is written into each follower's own feed at publish time (fan-out on write), so reading a feed is one cheap lookup. Pulling every author's posts at read time makes each feed view query everyone the reader follows`,
    ).toBeGreaterThanOrEqual(author.followers.length);
    for (const follower of author.followers) {
      const feed = await w.service.getFeed(follower);
      expect(ids(feed.posts), `follower ${follower} does not see the post right after publish()`).toEqual([post.id]);
    }
  });

  test("a celebrity's post is written once and pulled into followers' feeds at read time", async () => {
    const w = await setup();
    const celebrity = w.author(w.celebrityThreshold + randomInteger(10, 20));
    const post = w.post(celebrity.id);

    const result = await w.service.publish(post);

    expect(
      result,
      `an author with ${celebrity.followers.length} followers is at or over celebrityThreshold (${w.celebrityThreshold}): publish() must not fan the post out, and report fannedOutTo: 0`,
    ).toEqual({ fannedOutTo: 0 });
    const held = await holders(w.lab, post.id);
    expect(
      held.keys,
      `the celebrity's post id is in ${held.keys} Redis keys for ${celebrity.followers.length} followers. A celebrity's post must be stored once (say in the author's own timeline) and merged into feeds at read time: writing it into every follower's feed is millions of writes per post for an account with millions of followers`,
    ).toBeLessThanOrEqual(3);
    for (const follower of celebrity.followers) {
      const feed = await w.service.getFeed(follower);
      expect(
        ids(feed.posts),
        `follower ${follower} of a celebrity does not see the celebrity's post: getFeed() must merge the timelines of the celebrities the reader follows into the precomputed feed`,
      ).toEqual([post.id]);
    }
  });

  test('an author with exactly celebrityThreshold followers is a celebrity; one follower fewer is not', async () => {
    const w = await setup();
    const atThreshold = w.author(w.celebrityThreshold);
    const below = w.author(w.celebrityThreshold - 1);

    const celebrity = await w.service.publish(w.post(atThreshold.id));
    const ordinary = await w.service.publish(w.post(below.id));

    expect(
      celebrity.fannedOutTo,
      `an author with exactly celebrityThreshold (${w.celebrityThreshold}) followers was fanned out to ${celebrity.fannedOutTo} feeds: authors with AT LEAST the threshold are celebrities (>=, not >)`,
    ).toBe(0);
    expect(
      ordinary.fannedOutTo,
      `an author with celebrityThreshold - 1 (${w.celebrityThreshold - 1}) followers must be fanned out to all of them`,
    ).toBe(w.celebrityThreshold - 1);
  });

  test('a feed merges pushed and pulled posts newest first, equal createdAt broken by id descending', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const authors = [
      ...Array.from({ length: 3 }, () => w.author(1, [reader])),
      ...Array.from({ length: 3 }, () => w.author(w.celebrityThreshold + 2, [reader])),
    ];
    // Few distinct timestamps, so posts from different authors and both paths tie.
    const base = w.now();
    const moments = Array.from({ length: 4 }, (_, i) => base + i * randomInteger(1, 1000));
    const posts = authors.flatMap((author) =>
      Array.from({ length: 3 }, () => w.post(author.id, moments[randomInteger(0, 3)])),
    );

    for (const post of shuffle(posts)) await w.service.publish(post);
    const feed = await w.service.getFeed(reader, { limit: 50 });

    const expected = newestFirst(posts);
    expect(
      ids(feed.posts),
      `the feed of a reader following 3 ordinary authors and 3 celebrities has ${difference(feed.posts, expected)}. Expected every post once, newest createdAt first, and posts with equal createdAt ordered by id, largest first, so that every page boundary is well defined`,
    ).toEqual(ids(expected));
    expect(feed.nextCursor, `all ${posts.length} posts fit in one page of 50, so nextCursor must be null`).toBeNull();
  });

  test("a user's own posts are not in their home feed, even when the graph lists them as their own follower", async () => {
    const w = await setup();
    const user = w.author(randomInteger(1, w.celebrityThreshold - 2));
    const celebrity = w.author(w.celebrityThreshold + 1);
    // Many social graphs store a self-follow edge: each of these accounts follows itself.
    for (const self of [user.id, celebrity.id]) w.follow(self, self);
    const followed = w.author(1, [user.id, celebrity.id]);
    const own = [w.post(user.id), w.post(celebrity.id)];
    const theirs = w.post(followed.id);

    for (const post of [...own, theirs]) await w.service.publish(post);
    const userFeed = await w.service.getFeed(user.id);
    const celebrityFeed = await w.service.getFeed(celebrity.id);

    expect(
      ids(userFeed.posts),
      `the graph lists an ordinary author among their own followers (a self-follow edge) and their home feed has ${difference(userFeed.posts, [theirs])}. The home feed shows the accounts a user follows, never the user's own posts (the README decides this): publish() must leave the author out of the followers it writes to, or every user the graph stores as following themselves gets each of their own posts pushed back into their home feed`,
    ).toEqual([theirs.id]);
    expect(
      ids(celebrityFeed.posts),
      `a celebrity the graph lists among their own followers has ${difference(celebrityFeed.posts, [theirs])} in their home feed: getFeed() must leave the reader out of the accounts whose timelines it pulls, or a celebrity's own posts fill their home feed`,
    ).toEqual([theirs.id]);
  });

  test('a feed keeps only the newest feedLength posts, whichever order they were published in', async () => {
    const feedLength = randomInteger(8, 14);
    const w = await setup({ feedLength });
    const reader = randomId('reader');
    const ordinary = w.author(2, [reader]);
    const posts = Array.from({ length: feedLength + randomInteger(5, 10) }, () => w.post(ordinary.id));

    for (const post of shuffle(posts)) await w.service.publish(post);
    const feed = await readAll(w.service, reader, 5);

    const expected = newestFirst(posts).slice(0, feedLength);
    expect(
      ids(feed.posts),
      `feedLength is ${feedLength} and ${posts.length} posts were published (out of createdAt order, as happens with clock skew and retries); the feed has ${difference(feed.posts, expected)}. It must keep exactly the ${feedLength} newest, trimmed by createdAt, not by arrival`,
    ).toEqual(ids(expected));
    const largest = await largestKey(w.lab, posts);
    expect(
      largest.count,
      `the Redis key "${largest.key}" holds ${largest.count} of the author's posts, more than feedLength (${feedLength}). Trim on every write (ZREMRANGEBYRANK, LTRIM): a feed that is never trimmed grows for as long as the account lives, across millions of users`,
    ).toBeLessThanOrEqual(feedLength);
  });

  test("a celebrity's pulled timeline is bounded by feedLength too", async () => {
    const feedLength = randomInteger(8, 14);
    const w = await setup({ feedLength });
    const celebrity = w.author(w.celebrityThreshold + 3);
    const posts = Array.from({ length: feedLength + randomInteger(5, 10) }, () => w.post(celebrity.id));

    for (const post of shuffle(posts)) await w.service.publish(post);
    const feed = await readAll(w.service, celebrity.followers[0]!, 5);

    const expected = newestFirst(posts).slice(0, feedLength);
    expect(
      ids(feed.posts),
      `a follower of a celebrity who published ${posts.length} posts sees ${difference(feed.posts, expected)}; expected the celebrity's ${feedLength} newest, newest first`,
    ).toEqual(ids(expected));
    const largest = await largestKey(w.lab, posts);
    expect(
      largest.count,
      `the Redis key "${largest.key}" holds ${largest.count} of the celebrity's posts, more than feedLength (${feedLength}): the timeline that readers pull from must be trimmed like any feed, or it grows without bound`,
    ).toBeLessThanOrEqual(feedLength);
  });

  test('paging with nextCursor returns every post once, in order, in full pages', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const authors = [w.author(1, [reader]), w.author(2, [reader]), w.author(w.celebrityThreshold, [reader])];
    const posts = Array.from({ length: randomInteger(18, 30) }, () => w.post(authors[randomInteger(0, 2)]!.id));
    const limit = randomInteger(3, 7);

    for (const post of posts) await w.service.publish(post);
    const { posts: read, pages } = await readAll(w.service, reader, limit);

    const expected = newestFirst(posts);
    expect(
      ids(read),
      `paging through ${posts.length} posts with limit ${limit} gave ${difference(read, expected)}`,
    ).toEqual(ids(expected));
    const nonEmpty = pages.filter((page) => page.length > 0);
    for (const [i, page] of nonEmpty.slice(0, -1).entries()) {
      expect(
        page.length,
        `page ${i + 1} has ${page.length} posts but limit is ${limit} and more posts follow: every page but the last must be full`,
      ).toBe(limit);
    }
    expect(
      pages.length,
      `${posts.length} posts at ${limit} per page take ${Math.ceil(posts.length / limit)} pages; paging took ${pages.length}: nextCursor must be null on the last page, the one that holds the oldest post`,
    ).toBe(Math.ceil(posts.length / limit));
  });

  test('a feed whose length is an exact multiple of limit ends with a full page and a null nextCursor', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const ordinary = w.author(1, [reader]);
    const celebrity = w.author(w.celebrityThreshold, [reader]);
    const limit = randomInteger(3, 6);
    const fullPages = randomInteger(2, 4);
    const posts = Array.from({ length: limit * fullPages }, (_, i) => w.post((i % 3 ? ordinary : celebrity).id));

    for (const post of shuffle(posts)) await w.service.publish(post);
    const { posts: read, pages } = await readAll(w.service, reader, limit);

    const expected = newestFirst(posts);
    expect(
      ids(read),
      `paging through ${posts.length} posts with limit ${limit} gave ${difference(read, expected)}`,
    ).toEqual(ids(expected));
    expect(
      pages.map((page) => page.length),
      `${posts.length} posts at limit ${limit} are exactly ${fullPages} full pages, but paging gave pages of ${pages.map((page) => page.length).join(', ')} posts: the last full page must carry nextCursor null. A cursor issued whenever a page is full sends every client that scrolls to the end one more request for an empty page, and shows "load more" where there is nothing more. Read limit + 1 entries to know whether another page exists`,
    ).toEqual(Array.from({ length: fullPages }, () => limit));
  });

  test('new posts arriving between pages neither repeat nor skip posts on the next page', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const ordinary = w.author(1, [reader]);
    const celebrity = w.author(w.celebrityThreshold + 1, [reader]);
    const posts = Array.from({ length: 20 }, (_, i) => w.post((i % 2 ? ordinary : celebrity).id));
    for (const post of posts) await w.service.publish(post);
    const limit = randomInteger(4, 6);

    const first = await w.service.getFeed(reader, { limit });
    const fresh = Array.from({ length: randomInteger(2, 5) }, (_, i) => w.post((i % 2 ? celebrity : ordinary).id));
    for (const post of fresh) await w.service.publish(post);
    const rest: Post[] = [];
    let cursor = first.nextCursor;
    for (let i = 0; cursor !== null && i < 50; i++) {
      const page = await w.service.getFeed(reader, { limit, cursor });
      rest.push(...page.posts);
      cursor = page.nextCursor;
    }

    const expected = newestFirst(posts);
    expect(first.nextCursor, 'the first page of 20 posts must carry a nextCursor').not.toBeNull();
    expect(
      ids([...first.posts, ...rest]),
      `${fresh.length} posts were published while the reader was on page 1; paging on gave ${difference([...first.posts, ...rest], expected)}. A cursor that is an offset shifts when newer posts arrive, so the next page repeats posts the reader has seen (or skips some after a delete). Encode the position of the last post served (createdAt and id) and read strictly after it`,
    ).toEqual(ids(expected));
  });

  test('a page boundary inside a run of posts with the same createdAt repeats and skips nothing', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const ordinary = w.author(1, [reader]);
    const celebrity = w.author(w.celebrityThreshold, [reader]);
    const moment = w.now() + 10_000;
    const tied = Array.from({ length: randomInteger(9, 14) }, (_, i) =>
      w.post((i % 3 ? ordinary : celebrity).id, moment),
    );
    const older = Array.from({ length: 3 }, () => w.post(ordinary.id, moment - randomInteger(1, 500)));
    const posts = [...tied, ...older];

    for (const post of shuffle(posts)) await w.service.publish(post);
    const { posts: read } = await readAll(w.service, reader, randomInteger(3, 4));

    const expected = newestFirst(posts);
    expect(
      ids(read),
      `${tied.length} posts share one createdAt and pages split them; paging gave ${difference(read, expected)}. A cursor holding only createdAt cannot say where inside the run the last page stopped: it must hold the id as well, and ties must be ordered by id`,
    ).toEqual(ids(expected));
  });

  test('a page is hydrated with one batched read, in a constant number of round trips', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const authors = [
      ...Array.from({ length: 3 }, () => w.author(1, [reader])),
      ...Array.from({ length: 8 }, () => w.author(w.celebrityThreshold, [reader])),
    ];
    const posts = authors.flatMap((author) => Array.from({ length: 5 }, () => w.post(author.id)));
    for (const post of shuffle(posts)) await w.service.publish(post);
    const limit = 25;

    const measure = async (which: string, cursor?: string) => {
      const byIds = w.table.byIds.callCount;
      const graph = w.graphCalls();
      w.lab.roundTrips.reset();

      const page = await w.service.getFeed(reader, { limit, ...(cursor !== undefined && { cursor }) });

      const byIdsCalls = w.table.byIds.callCount - byIds;
      const graphCalls = w.graphCalls() - graph;
      expect(page.posts.length, `${which} should hold ${limit} posts`).toBe(limit);
      expect(
        byIdsCalls,
        `reading ${which} (${limit} posts) called posts.byIds ${byIdsCalls} times: hydrate the whole page with one batched call (SELECT … WHERE id IN (…)), not one query per post`,
      ).toBeLessThanOrEqual(2);
      expect(
        w.lab.roundTrips.count,
        `reading ${which} for a reader who follows 3 ordinary authors and 8 celebrities took ${w.lab.roundTrips.count} Redis round trips (${w.lab.roundTrips.summary()}). Send the reads together (one pipeline, or commands sent at once with Promise.all, each batch one round trip): awaiting a round trip per post or per celebrity followed multiplies feed latency by the page size or by the number of celebrities`,
      ).toBeLessThanOrEqual(4);
      expect(
        graphCalls,
        `reading ${which} made ${graphCalls} calls to the social graph: one following() call is enough. Asking followers() of every account the reader follows, to find the celebrities, costs hundreds of graph queries per feed view; remember who is a celebrity in Redis when they publish`,
      ).toBeLessThanOrEqual(2);
      return page;
    };

    const first = await measure('the first page');
    await measure('a page read with a cursor', first.nextCursor ?? undefined);
  });

  test('a page reads about a page from each timeline, not whole histories', async () => {
    const w = await setup({ feedLength: 200 });
    const reader = randomId('reader');
    const authors = [
      ...Array.from({ length: 2 }, () => w.author(1, [reader])),
      ...Array.from({ length: 4 }, () => w.author(w.celebrityThreshold, [reader])),
    ];
    const history = 80;
    for (let i = 0; i < history; i++) {
      for (const author of authors) await w.service.publish(w.post(author.id));
      // Mock replies are microtasks: let the event loop turn between rounds of publishes.
      await settle(1);
    }
    const limit = 10;
    // A page may read limit + 1 entries (to know if there is more) from the inbox and from each
    // celebrity timeline, with scores; the slack covers metadata such as who is a celebrity.
    const budget = 2 * (limit + 1) * (1 + 4) + 60;

    const first = await w.lab.roundTrips.during(() => w.service.getFeed(reader, { limit }));
    const next = await w.lab.roundTrips.during(() =>
      w.service.getFeed(reader, { limit, cursor: first.result.nextCursor! }),
    );

    for (const [which, cost] of [
      ['the first page', first],
      ['the second page', next],
    ] as const) {
      expect(
        cost.elementsRead,
        `reading ${which} of ${limit} posts made Redis send back ${cost.elementsRead} items, for a reader who follows 2 ordinary authors and 4 celebrities with ${history} posts each (a page needs at most about ${budget}). Read only the newest limit + 1 entries of each timeline below the cursor (ZREVRANGEBYSCORE … LIMIT 0 n): reading whole histories makes every page cost as much as the biggest account's lifetime of posts`,
      ).toBeLessThanOrEqual(budget);
    }
  });

  test('posts come back as the posts table has them now, after an edit too, not as copies stored at publish or read time', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const ordinary = w.author(1, [reader]);
    const celebrity = w.author(w.celebrityThreshold, [reader]);
    const posts = [w.post(ordinary.id), w.post(celebrity.id), w.post(ordinary.id)];
    for (const post of posts) await w.service.publish(post);
    // A first read, which anything that caches post bodies would fill.
    const before = await w.service.getFeed(reader);

    const edited = posts.map((post) => ({ ...post, text: `edited: ${randomText(3)}` }));
    for (const post of edited) w.table.rows.set(post.id, post);
    const after = await w.service.getFeed(reader);

    expect(
      before.posts,
      'getFeed() must return the posts as the posts table has them (hydrate the ids in the feed with posts.byIds)',
    ).toEqual(newestFirst(posts));
    const stale = after.posts.filter((post) =>
      posts.some((old) => old.id === post.id && old.text === post.text),
    ).length;
    expect(
      after.posts,
      `the feed was read, then ${edited.length} posts were edited in the table, and the next read shows the old text of ${stale} of them. getFeed() must hydrate every page from posts.byIds: post bodies copied into feeds at publish time, or cached in Redis at read time with nothing to invalidate them, keep serving a post after its author fixed it or a moderator redacted it, for as long as the key lives`,
    ).toEqual(newestFirst(edited));
  });

  test('posts the table no longer has are skipped, even a whole page of them, and paging still reaches every older post', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const ordinary = w.author(1, [reader]);
    const celebrity = w.author(w.celebrityThreshold, [reader]);
    const posts = Array.from({ length: randomInteger(14, 20) }, (_, i) => w.post((i % 2 ? ordinary : celebrity).id));
    for (const post of posts) await w.service.publish(post);
    const limit = randomInteger(3, 5);
    // Every post of the first page, and a few further down.
    const gone = [...newestFirst(posts).slice(0, limit), ...shuffle(newestFirst(posts).slice(limit)).slice(0, 3)];

    for (const post of gone) w.table.rows.delete(post.id);
    const { posts: read } = await readAll(w.service, reader, limit);

    const expected = newestFirst(posts.filter((post) => !gone.includes(post)));
    expect(
      read.every((post) => post && typeof post.id === 'string'),
      'getFeed() returned undefined or null entries for posts missing from the table: skip them',
    ).toBe(true);
    expect(
      ids(read),
      `${gone.length} posts were deleted from the table before the feed caught up (a delete event can lag), all ${limit} of the first page among them; paging with limit ${limit} gave ${difference(read, expected)}. Skip ids the table does not return and carry on, and build nextCursor from the last feed entry the page read, not the last post it returned: otherwise a page whose posts are all gone ends the feed, and one burst of deletions hides every older post from the reader`,
    ).toEqual(ids(expected));
  });

  test('deletePost removes the post from every feed, even while the table still returns it', async () => {
    const w = await setup();
    const ordinary = w.author(w.celebrityThreshold - 1);
    const celebrity = w.author(w.celebrityThreshold + 2, ordinary.followers.slice(0, 2));
    const posts = [w.post(ordinary.id), w.post(celebrity.id), w.post(ordinary.id), w.post(celebrity.id)];
    for (const post of posts) await w.service.publish(post);
    const deleted = [posts[0]!, posts[3]!];

    for (const post of deleted) await w.service.deletePost(post);

    // The table keeps the rows: a soft delete, or a replica that has not caught up.
    for (const reader of new Set([...ordinary.followers, ...celebrity.followers])) {
      const feed = await w.service.getFeed(reader);
      const shown = feed.posts.filter((post) => deleted.some((d) => d.id === post.id));
      expect(
        shown.map((post) => (post.authorId === ordinary.id ? 'pushed' : 'pulled')),
        `a deleted post (${shown.length} of them) is still in ${reader}'s feed. deletePost() must remove it from each follower's precomputed feed (pushed posts) and from the author's timeline (pulled posts); the feed must not rely on the table to hide it`,
      ).toEqual([]);
      const kept = newestFirst(
        posts.filter(
          (post) =>
            !deleted.includes(post) &&
            (post.authorId === ordinary.id ? ordinary : celebrity).followers.includes(reader),
        ),
      );
      expect(
        ids(feed.posts),
        `after deletePost() ${reader}'s feed has ${difference(feed.posts, kept)}; only the deleted posts should be gone`,
      ).toEqual(ids(kept));
    }
  });

  test("unfollow removes the author's posts from that follower's feed only", async () => {
    const w = await setup();
    const reader = randomId('reader');
    const other = randomId('other');
    const ordinary = w.author(1, [reader, other]);
    const celebrity = w.author(w.celebrityThreshold, [reader, other]);
    const stays = w.author(1, [reader]);
    const posts = Array.from({ length: 9 }, (_, i) => w.post([ordinary, celebrity, stays][i % 3]!.id));
    for (const post of posts) await w.service.publish(post);

    for (const author of [ordinary, celebrity]) {
      w.cut(reader, author.id);
      await w.service.unfollow(reader, author.id);
    }

    const readerFeed = await w.service.getFeed(reader);
    const otherFeed = await w.service.getFeed(other);
    expect(
      ids(readerFeed.posts),
      `after unfollowing two authors the reader's feed has ${difference(readerFeed.posts, newestFirst(posts.filter((p) => p.authorId === stays.id)))}: unfollow() must remove the unfollowed author's posts already pushed into this reader's feed, and their pulled posts must no longer be merged in`,
    ).toEqual(ids(newestFirst(posts.filter((p) => p.authorId === stays.id))));
    const otherExpected = newestFirst(posts.filter((p) => p.authorId !== stays.id));
    expect(
      ids(otherFeed.posts),
      `the feed of another follower, who still follows both authors, has ${difference(otherFeed.posts, otherExpected)} after the reader unfollowed them: unfollow() must touch only the unfollowing user's feed`,
    ).toEqual(ids(otherExpected));
  });

  test('publish() to many followers does not make a round trip per follower', async () => {
    const w = await setup({ celebrityThreshold: 1_000 });
    const author = w.author(60);
    const post = w.post(author.id);
    w.lab.roundTrips.reset();

    await w.service.publish(post);

    expect(
      w.lab.roundTrips.count,
      `publishing to 60 followers took ${w.lab.roundTrips.count} round trips (${w.lab.roundTrips.summary()}). Send the feed writes in pipelines (in chunks for big follower lists): one awaited write per follower makes a 10,000-follower post take 10,000 network round trips`,
    ).toBeLessThanOrEqual(15);
  });

  test('concurrent publishes into the same follower feed all land', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const posts = Array.from({ length: 25 }, () => w.post(w.author(1, [reader]).id));

    await Promise.all(posts.map((post) => w.service.publish(post)));
    const feed = await w.service.getFeed(reader, { limit: 50 });

    expect(
      ids(feed.posts),
      `25 authors published at the same moment and the shared follower's feed has ${difference(feed.posts, posts)}. Reading a feed, adding to it and writing it back loses concurrent updates; use a Redis structure that is updated in place (ZADD, LPUSH)`,
    ).toEqual(ids(newestFirst(posts)));
  });

  test("a publish that another instance's publish into the same feed races at any round trip loses neither post", async () => {
    const feedLength = randomInteger(4, 7);
    const w = await setup({ feedLength });

    // The reader's feed is full, so both publishes also trim it. Follower counts are drawn once:
    // every trip must race the same operation.
    const [followers, rivalFollowers] = [randomInteger(1, 3), randomInteger(1, 3)];
    await raceAtEveryTrip({
      async arrange() {
        const reader = randomId('reader');
        const older = Array.from({ length: feedLength }, () => w.post(w.author(1, [reader]).id));
        for (const post of older) await w.service.publish(post);
        const post = w.post(w.author(followers, [reader]).id);
        const rivalPost = w.post(w.author(rivalFollowers, [reader]).id);
        return { lab: w.lab, reader, older, post, rivalPost, rival: w.make(w.lab.connect()), raced: false };
      },
      act: ({ post }) => w.service.publish(post),
      async race(state) {
        await state.rival.publish(state.rivalPost);
        state.raced = true;
      },
      async check({ reader, older, post, rivalPost, raced }, at) {
        const landed = raced ? [post, rivalPost] : [post];
        const expected = newestFirst([...older, ...landed]).slice(0, feedLength);
        const feed = await w.service.getFeed(reader, { limit: 100 });
        const largest = await largestKey(w.lab, [...older, ...landed]);

        const when = raced
          ? `another FeedService published into the same follower's feed right before round trip ${at.trip + 1} of publish()`
          : 'publish() ran alone';
        expect('error' in at.outcome ? at.outcome.error : undefined, `${when}, and publish() failed`).toBeUndefined();
        expect(
          ids(feed.posts),
          `${when}; with feedLength ${feedLength} the follower's feed then has ${difference(feed.posts, expected)}. Reading a feed, adding to it and writing it back loses concurrent updates: the write overwrites whatever the other instance added in between. Update the feed in place (ZADD, then trim by rank), so that every post of a busy follower's feed lands`,
        ).toEqual(ids(expected));
        expect(
          largest.count,
          `${when}, and the Redis key "${largest.key}" then holds ${largest.count} of the follower's posts, more than feedLength (${feedLength}): each write must trim the feed, whatever the other one did`,
        ).toBeLessThanOrEqual(feedLength);
      },
    });
  });

  test('an empty feed is no posts and a null cursor; the default page is 20 posts', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const author = w.author(1, [reader]);
    const posts = Array.from({ length: randomInteger(25, 35) }, () => w.post(author.id));

    const empty = await w.service.getFeed(randomId('nobody'));
    for (const post of posts) await w.service.publish(post);
    const page = await w.service.getFeed(reader);

    expect(empty, 'a user who follows nobody must get { posts: [], nextCursor: null }').toEqual({
      posts: [],
      nextCursor: null,
    });
    expect(
      ids(page.posts),
      'getFeed() without a limit must return the 20 newest posts (the default limit in the README)',
    ).toEqual(ids(newestFirst(posts).slice(0, 20)));
    expect(page.nextCursor, 'more than 20 posts remain, so the first page must carry a nextCursor').not.toBeNull();
  });

  test('an invalid limit or cursor is rejected', async () => {
    const w = await setup();
    const reader = randomId('reader');
    const author = w.author(1, [reader]);
    for (let i = 0; i < 3; i++) await w.service.publish(w.post(author.id));

    for (const limit of [0, -randomInteger(1, 9), 2.5, 101, Number.NaN]) {
      await expect(
        w.service.getFeed(reader, { limit }),
        `getFeed() with limit ${limit} must reject: the README allows integers from 1 to 100. An unchecked limit lets one request ask for a million posts`,
      ).rejects.toThrow();
    }
    for (const cursor of [randomText(2), `${randomInteger(1, 9)}`, 'e30', '%%%']) {
      await expect(
        w.service.getFeed(reader, { cursor }),
        `getFeed() with the cursor ${JSON.stringify(cursor)}, which getFeed() never issued, must reject rather than guess a position or restart from page one`,
      ).rejects.toThrow();
    }
  });
});

describe('staff', () => {
  test('an author who crosses the threshold upward: every post appears exactly once', async () => {
    const w = await setup();
    const author = w.author(w.celebrityThreshold - 1);
    const before = Array.from({ length: 4 }, () => w.post(author.id));
    for (const post of before) await w.service.publish(post);

    const newcomers = Array.from({ length: randomInteger(1, 4) }, () => randomId('user'));
    for (const follower of newcomers) w.follow(follower, author.id);
    const after = Array.from({ length: 4 }, () => w.post(author.id));
    const results = [];
    for (const post of after) results.push(await w.service.publish(post));

    expect(
      results.map((r) => r.fannedOutTo),
      `the author now has ${w.celebrityThreshold - 1 + newcomers.length} followers, at or over the threshold of ${w.celebrityThreshold}: later posts must not be fanned out`,
    ).toEqual(after.map(() => 0));
    const expected = newestFirst([...before, ...after]);
    for (const follower of author.followers) {
      const { posts } = await readAll(w.service, follower, 3);
      expect(
        ids(posts),
        `a follower from before the author became a celebrity sees ${difference(posts, expected)}. The posts pushed before the crossing and the ones pulled after must each appear once: don't lose the pushed ones, and if the author's timeline holds both, deduplicate by id when merging`,
      ).toEqual(ids(expected));
    }
    for (const follower of newcomers) {
      const { posts } = await readAll(w.service, follower, 3);
      expect(
        ids(posts).filter((id) => ids(after).includes(id)),
        'a new follower of a celebrity must see the posts published since they followed',
      ).toEqual(ids(newestFirst(after)));
      expect(new Set(ids(posts)).size, "a post is shown twice in a new follower's feed").toBe(posts.length);
    }
  });

  test('an author who falls below the threshold: every post appears exactly once', async () => {
    const w = await setup();
    const author = w.author(w.celebrityThreshold + 2);
    const before = Array.from({ length: 4 }, () => w.post(author.id));
    for (const post of before) await w.service.publish(post);

    const leaving = author.followers.slice(0, 3);
    for (const follower of leaving) {
      w.cut(follower, author.id);
      await w.service.unfollow(follower, author.id);
    }
    const remaining = author.followers.slice(3);
    const after = Array.from({ length: 4 }, () => w.post(author.id));
    const results = [];
    for (const post of after) results.push(await w.service.publish(post));

    expect(
      results.map((r) => r.fannedOutTo),
      `the author is down to ${remaining.length} followers, below the threshold of ${w.celebrityThreshold}: posts must be pushed again`,
    ).toEqual(after.map(() => remaining.length));
    const expected = newestFirst([...before, ...after]);
    for (const follower of remaining) {
      const { posts } = await readAll(w.service, follower, 3);
      expect(
        ids(posts),
        `a follower of an author who stopped being a celebrity sees ${difference(posts, expected)}. The posts published as a celebrity were never pushed, so they must still be pulled (the author is no longer a celebrity, but their old posts still live only in their timeline), and each post exactly once`,
      ).toEqual(ids(expected));
    }
  });

  test('in queued mode publish() writes no feed, and drainFanout() delivers the post to every follower', async () => {
    const w = await setup({ queued: true });
    const author = w.author(w.celebrityThreshold - 1);
    const post = w.post(author.id);

    const result = await w.service.publish(post);
    const heldBefore = await holders(w.lab, post.id);
    const seenBefore = (await w.service.getFeed(author.followers[0]!)).posts.length;
    await drainAll(w.service);

    expect(
      result,
      `in queued mode publish() must still report the number of followers the post is queued for (${author.followers.length})`,
    ).toEqual({ fannedOutTo: author.followers.length });
    expect(
      heldBefore.entries < author.followers.length && seenBefore === 0,
      `in queued mode publish() must only enqueue the fan-out and return; it wrote the post into followers' feeds itself, so a post by a big account still blocks the request that published it`,
    ).toBe(true);
    for (const follower of author.followers) {
      expect(
        ids((await w.service.getFeed(follower)).posts),
        `after drainFanout() reported done, follower ${follower} does not see the queued post`,
      ).toEqual([post.id]);
    }
  });

  test('drainFanout() writes at most maxFeeds feeds per call and makes progress on every call', async () => {
    const w = await setup({ queued: true, celebrityThreshold: 100 });
    const author = w.author(randomInteger(15, 25));
    const post = w.post(author.id);
    const maxFeeds = randomInteger(3, 6);
    await w.service.publish(post);

    const first = await w.service.drainFanout({ maxFeeds });
    let seen = 0;
    for (const follower of author.followers) seen += (await w.service.getFeed(follower)).posts.length;
    const results = [first];
    for (let i = 0; i < 50 && !results.at(-1)!.done; i++) results.push(await w.service.drainFanout({ maxFeeds }));

    expect(
      seen,
      `one drainFanout({ maxFeeds: ${maxFeeds} }) delivered the post to ${seen} of ${author.followers.length} followers: a worker must do a bounded batch per call, so one huge fan-out cannot hold a worker (and the posts queued behind it) for minutes`,
    ).toBeLessThanOrEqual(maxFeeds);
    expect(
      seen,
      'the first drainFanout() call delivered the post to nobody: each call must make progress',
    ).toBeGreaterThan(0);
    expect(
      first.feedsWritten,
      `drainFanout() must report feedsWritten, the feeds it wrote in this call (${seen})`,
    ).toBe(seen);
    expect(
      results.every((r) => r.feedsWritten <= maxFeeds),
      `a drainFanout() call reported more than maxFeeds (${maxFeeds}) feeds written: ${results.map((r) => r.feedsWritten).join(', ')}`,
    ).toBe(true);
    expect(
      results.reduce((sum, r) => sum + r.feedsWritten, 0),
      `the calls together reported ${results.reduce((sum, r) => sum + r.feedsWritten, 0)} feeds written for a post queued for ${author.followers.length} followers`,
    ).toBe(author.followers.length);
    expect(results.at(-1)!.done, 'drainFanout() never reported done: true').toBe(true);
  });

  test('queued fan-out lives in Redis: a new process drains what another one queued', async () => {
    const w = await setup({ queued: true });
    const author = w.author(w.celebrityThreshold - 1);
    const posts = [w.post(author.id), w.post(author.id)];
    for (const post of posts) await w.service.publish(post);

    const worker = w.make(w.lab.connect());
    await drainAll(worker);

    for (const follower of author.followers) {
      expect(
        ids((await worker.getFeed(follower)).posts),
        "a second FeedService over the same Redis drained the queue, but the posts never reached the followers: the queue must live in Redis, not in the publishing process's memory, which a deploy or a crash wipes",
      ).toEqual(ids(newestFirst(posts)));
    }
  });

  // The longer timeout is for designs that drain with Lua scripts, which the mock runs slowly;
  // the reference takes about 150 ms here.
  test('a worker that dies at any point of a drain loses no fan-out and duplicates none', {
    timeout: 30_000,
  }, async () => {
    // The worker's connection drops after 0, 1, 2… round trips of its drain: the process is gone.
    // The follower count is drawn once, so every trip cuts the same drain.
    const followers = randomInteger(3, 4);
    await crashAtEveryTrip({
      async arrange() {
        const w = await setup({ queued: true, celebrityThreshold: 100 });
        const clock = useFakeClock(w.lab);
        const author = w.author(followers);
        const posts = [w.post(author.id), w.post(author.id)];
        for (const post of posts) await w.service.publish(post);
        return { ...w, clock, author, posts };
      },
      act: ({ service }) => drainAll(service, 2),
      async check({ lab, clock, make, author, posts }, at) {
        await clock.advance(LEASE_MS + 1);
        const restarted = make(lab.connect());
        await drainAll(restarted, 2);

        const what = at.finishedFirst
          ? 'the worker drained the whole queue'
          : `the worker's connection dropped ${describeCut(at)} of drainFanout()`;
        for (const follower of author.followers) {
          const feed = await restarted.getFeed(follower);
          expect(
            ids(feed.posts),
            `${what}, then a restarted worker drained the queue; follower ${follower} has ${difference(feed.posts, posts)}. Remove a job from the queue only after its feeds are written (peek, or move it to a processing list and retry it after fanoutLeaseMs); popping it first loses it when the worker dies`,
          ).toEqual(ids(newestFirst(posts)));
        }
        await lab.close();
      },
    });
  });

  test('a post deleted while its fan-out is queued is not written into any feed afterwards', async () => {
    const w = await setup({ queued: true, celebrityThreshold: 100 });
    const author = w.author(randomInteger(8, 12));
    const post = w.post(author.id);
    const kept = w.post(author.id);
    await w.service.publish(post);
    await w.service.publish(kept);

    await w.service.drainFanout({ maxFeeds: 3 });
    await w.service.deletePost(post);
    await drainAll(w.service, 3);

    for (const follower of author.followers) {
      expect(
        ids((await w.service.getFeed(follower)).posts),
        `a post deleted while its fan-out was half done reached follower ${follower}'s feed after the delete. deletePost() must cancel the queued work (or the worker must check for it) so that the remaining batches do not put it back`,
      ).toEqual([kept.id]);
    }
  });

  test('a follower who unfollows before the fan-out runs does not receive the post', async () => {
    const w = await setup({ queued: true });
    const author = w.author(w.celebrityThreshold - 1);
    const post = w.post(author.id);
    await w.service.publish(post);
    const [leaver, ...stayers] = author.followers;

    w.cut(leaver!, author.id);
    await w.service.unfollow(leaver!, author.id);
    await drainAll(w.service);

    expect(
      ids((await w.service.getFeed(leaver!)).posts),
      'a user unfollowed the author after publish() but before the queued fan-out ran, and still received the post: the worker must use the follower list as it is when it writes (read the graph at drain time), not a snapshot taken at publish time',
    ).toEqual([]);
    for (const follower of stayers) {
      expect(ids((await w.service.getFeed(follower)).posts), `follower ${follower} did not get the post`).toEqual([
        post.id,
      ]);
    }
  });
});
