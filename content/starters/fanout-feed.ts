import type { Redis } from 'ioredis';

export interface Post {
  id: string;
  authorId: string;
  /** Milliseconds since the epoch. Posts may be published out of createdAt order. */
  createdAt: number;
  text: string;
}

/** The social graph: the source of truth for who follows whom. Answers in no particular order. */
export interface SocialGraph {
  followers(userId: string): Promise<string[]>;
  following(userId: string): Promise<string[]>;
}

/** The posts table: the source of truth for posts. */
export interface PostsTable {
  /** The rows for these ids, in any order; ids with no row are simply absent. */
  byIds(ids: string[]): Promise<Post[]>;
}

export interface FeedServiceOptions {
  /** ioredis client, mock or real. */
  redis: Redis;
  graph: SocialGraph;
  posts: PostsTable;
  /** Authors with at least this many followers are celebrities: their posts are not fanned out. */
  celebrityThreshold: number;
  /** Entries kept in each precomputed feed, and in each author timeline that readers pull from. */
  feedLength: number;
  /**
   * 'inline' (default): publish() writes followers' feeds itself.
   * 'queued': publish() only enqueues the fan-out, and drainFanout() performs it (staff level).
   */
  fanout?: 'inline' | 'queued';
  /**
   * Queued mode only: if your worker claims jobs (a processing list, a lease), a claim not
   * finished within this many ms must be retried by another worker. Ignore it if you never claim.
   */
  fanoutLeaseMs?: number;
}

export class FeedService {
  constructor(private readonly options: FeedServiceOptions) {}

  /**
   * Stores a post's place in the feeds: pushed into each follower's feed for an ordinary author,
   * written once for a celebrity. `fannedOutTo` is the number of feeds written (or, in queued
   * mode, queued); 0 for a celebrity.
   */
  async publish(post: Post): Promise<{ fannedOutTo: number }> {
    throw new Error('TODO: implement FeedService.publish (see README.md)');
  }

  /**
   * A page of the user's home feed, newest first (createdAt descending, then id descending).
   * `limit` is an integer from 1 to 100, 20 by default. Pass `nextCursor` back as `cursor` for
   * the next page; `nextCursor` is null on the last page.
   */
  async getFeed(
    userId: string,
    options?: { limit?: number; cursor?: string },
  ): Promise<{ posts: Post[]; nextCursor: string | null }> {
    throw new Error('TODO: implement FeedService.getFeed (see README.md)');
  }

  /** Removes a deleted post from every feed. The posts table may still return it for a while. */
  async deletePost(post: Post): Promise<void> {
    throw new Error('TODO: implement FeedService.deletePost (see README.md)');
  }

  /** Called after the graph no longer has followerId following authorId. */
  async unfollow(followerId: string, authorId: string): Promise<void> {
    throw new Error('TODO: implement FeedService.unfollow (see README.md)');
  }

  /**
   * Queued mode (staff): performs queued fan-out, writing at most `maxFeeds` feeds (default
   * 1000). `feedsWritten` is the number written by this call; `done` is true when no work is
   * left in the queue.
   */
  async drainFanout(options?: { maxFeeds?: number }): Promise<{ feedsWritten: number; done: boolean }> {
    throw new Error('TODO: implement FeedService.drainFanout (see README.md)');
  }
}
