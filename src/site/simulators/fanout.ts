/**
 * The fan-out simulator's model (lesson: content/lessons/fan-out-feeds.mdx, "Hybrid fan-out and
 * the celebrity problem"). Pure functions, no DOM: the island renders its build-time fallback and
 * its live updates from these, and test/self/simulator-fanout.test.ts checks them by hand.
 *
 * The network: `activeUsers` users, each following `followsPerReader` accounts, of which
 * `celebritiesFollowedPerReader` are at or above `celebrityThresholdFollowers`. Every follow edge
 * has two ends, so the average account also has `followsPerReader` followers: a push copies the
 * average post into that many feeds, which is what the memory comparison rests on.
 */

export type Strategy = 'push' | 'pull' | 'hybrid';
export const STRATEGIES: readonly Strategy[] = ['push', 'pull', 'hybrid'];

export interface FanoutInputs {
  /** Followers of the author who publishes. */
  authorFollowers: number;
  /** Authors with at least this many followers are celebrities: the hybrid pulls their posts. */
  celebrityThresholdFollowers: number;
  /** Home-feed page requests per second, across all readers. */
  feedReadsPerSecond: number;
  /** Accounts one reader follows. */
  followsPerReader: number;
  /** Of those, how many are celebrities (capped at followsPerReader). */
  celebritiesFollowedPerReader: number;
  /** Entries on one feed page. */
  pageSize: number;
  /** Users whose feeds are kept warm in Redis. */
  activeUsers: number;
  /** Entries a precomputed feed keeps (ZREMRANGEBYRANK trims the rest). */
  feedCapEntries: number;
  /** Redis memory per sorted-set entry, overhead included (measure it with MEMORY USAGE). */
  bytesPerEntry: number;
}

export interface StrategyCost {
  /** Sorted-set inserts one post by this author causes. */
  writesPerPublish: number;
  /** Range reads (ZRANGE) one feed page needs before hydration. */
  rangeReadsPerPage: number;
  /** Entries those range reads return: each asks for up to a page, the merge keeps one page. */
  entriesReadPerPage: number;
  /** Range reads Redis serves per second at feedReadsPerSecond. */
  rangeReadsPerSecond: number;
  /** Redis memory for feeds and timelines, before replicas and headroom. */
  memoryBytes: number;
}

export type FanoutResult = Record<Strategy, StrategyCost> & {
  /** Whether the hybrid treats this author as a celebrity (pulls instead of pushing). */
  authorIsCelebrity: boolean;
};

/** The push side of the hybrid stops at the threshold: an author with that many followers is pulled. */
export function isCelebrity(followers: number, celebrityThresholdFollowers: number): boolean {
  return followers >= celebrityThresholdFollowers;
}

export function fanout(inputs: FanoutInputs): FanoutResult {
  const {
    authorFollowers,
    celebrityThresholdFollowers,
    feedReadsPerSecond,
    followsPerReader,
    pageSize,
    activeUsers,
    feedCapEntries,
    bytesPerEntry,
  } = inputs;
  const celebrities = Math.min(inputs.celebritiesFollowedPerReader, followsPerReader);
  const authorIsCelebrity = isCelebrity(authorFollowers, celebrityThresholdFollowers);

  // Push keeps one capped feed per active user.
  const feedBytes = activeUsers * feedCapEntries * bytesPerEntry;
  // Pull stores each post once, in its author's timeline, instead of once per follower (on average
  // followsPerReader times), so timelines covering the period the feeds cover hold 1/followsPerReader
  // as many entries.
  const timelineBytes = followsPerReader > 0 ? feedBytes / followsPerReader : 0;
  // Readers make activeUsers × celebrities follow edges into celebrities, and each celebrity takes
  // at least the threshold of them: at most that many celebrity timelines, each at most one feed cap.
  const celebrityTimelines = Math.floor((activeUsers * celebrities) / Math.max(1, celebrityThresholdFollowers));
  const celebrityTimelineBytes = celebrityTimelines * feedCapEntries * bytesPerEntry;

  const cost = (writesPerPublish: number, rangeReadsPerPage: number, memoryBytes: number): StrategyCost => ({
    writesPerPublish,
    rangeReadsPerPage,
    entriesReadPerPage: rangeReadsPerPage * pageSize,
    rangeReadsPerSecond: rangeReadsPerPage * feedReadsPerSecond,
    memoryBytes,
  });

  return {
    authorIsCelebrity,
    push: cost(authorFollowers, 1, feedBytes),
    pull: cost(1, followsPerReader, timelineBytes),
    hybrid: cost(authorIsCelebrity ? 1 : authorFollowers, 1 + celebrities, feedBytes + celebrityTimelineBytes),
  };
}

/** A slider steps through these values; its position is the index. */
export interface ControlSpec {
  name: keyof FanoutInputs;
  label: string;
  values: readonly number[];
  defaultValue: number;
  format: (value: number) => string;
}

const oneTwoFive = (from: number, to: number): number[] => {
  const values: number[] = [];
  for (let decade = from; decade <= to; decade *= 10)
    for (const m of [1, 2, 5]) if (m * decade <= to) values.push(m * decade);
  return values;
};

const counted = (noun: string) => (value: number) => `${formatCount(value)} ${noun}`;

export const FANOUT_CONTROLS: readonly ControlSpec[] = [
  {
    name: 'authorFollowers',
    label: 'Followers of the author who posts',
    values: oneTwoFive(10, 100_000_000),
    defaultValue: 2_000_000,
    format: counted('followers'),
  },
  {
    name: 'celebrityThresholdFollowers',
    label: 'Celebrity threshold',
    values: oneTwoFive(1_000, 10_000_000),
    defaultValue: 100_000,
    format: counted('followers'),
  },
  {
    name: 'feedReadsPerSecond',
    label: 'Feed page reads',
    values: oneTwoFive(100, 1_000_000),
    defaultValue: 200_000,
    format: (value) => `${formatCount(value)} per second`,
  },
  {
    name: 'followsPerReader',
    label: 'Accounts a reader follows',
    values: oneTwoFive(10, 5_000),
    defaultValue: 200,
    format: counted('accounts'),
  },
  {
    name: 'celebritiesFollowedPerReader',
    label: 'Of which celebrities',
    values: [0, 1, 2, 3, 5, 10, 20, 50, 100],
    defaultValue: 5,
    format: counted('celebrities'),
  },
  {
    name: 'pageSize',
    label: 'Feed page size',
    values: [10, 20, 50, 100],
    defaultValue: 20,
    format: counted('entries'),
  },
  {
    name: 'activeUsers',
    label: 'Active users with a warm feed',
    values: oneTwoFive(100_000, 1_000_000_000),
    defaultValue: 10_000_000,
    format: counted('users'),
  },
  {
    name: 'feedCapEntries',
    label: 'Feed length cap',
    values: [50, 100, 128, 200, 500, 800, 1_000],
    defaultValue: 200,
    format: counted('entries'),
  },
  {
    name: 'bytesPerEntry',
    label: 'Memory per feed entry',
    values: [16, 32, 48, 64, 96, 123, 160, 200, 256],
    defaultValue: 123,
    format: (value) => `${value} bytes`,
  },
];

export const FANOUT_DEFAULTS = Object.fromEntries(
  FANOUT_CONTROLS.map((control) => [control.name, control.defaultValue]),
) as unknown as FanoutInputs;

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const threeDigits = new Intl.NumberFormat('en-US', { maximumSignificantDigits: 3 });

/** "2,000,000": exact counts, grouped, the same in Node and every browser. */
export function formatCount(value: number): string {
  return integer.format(value);
}

/** Decimal units (1 GB = 10^9 bytes), three significant digits: "24.6 GB". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let scaled = bytes;
  let unit = 0;
  while (scaled >= 1000 && unit < units.length - 1) {
    scaled /= 1000;
    unit += 1;
  }
  return `${threeDigits.format(scaled)} ${units[unit]}`;
}

export interface TableRow {
  label: string;
  cells: Record<Strategy, string>;
}

/** The result table, as text: the fallback and the live island both show exactly these strings. */
export function fanoutTable(result: FanoutResult): TableRow[] {
  const row = (label: string, pick: (cost: StrategyCost) => string): TableRow => ({
    label,
    cells: { push: pick(result.push), pull: pick(result.pull), hybrid: pick(result.hybrid) },
  });
  return [
    row('Feed writes per post', (cost) => formatCount(cost.writesPerPublish)),
    row('Range reads per page', (cost) => formatCount(cost.rangeReadsPerPage)),
    row('Entries read per page', (cost) => formatCount(cost.entriesReadPerPage)),
    row('Range reads per second', (cost) => formatCount(cost.rangeReadsPerSecond)),
    row('Memory, feeds and timelines', (cost) => formatBytes(cost.memoryBytes)),
  ];
}

/** One sentence under the table: how the hybrid treats this author, in words. */
export function fanoutVerdict(inputs: FanoutInputs, result: FanoutResult): string {
  const followers = formatCount(inputs.authorFollowers);
  const threshold = formatCount(inputs.celebrityThresholdFollowers);
  return result.authorIsCelebrity
    ? `With ${followers} followers the author is at or above the ${threshold} threshold: the hybrid writes the post once and pulls it at read time.`
    : `With ${followers} followers the author is below the ${threshold} threshold: the hybrid pushes the post like push does.`;
}
