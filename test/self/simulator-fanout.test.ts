import { describe, expect, it } from 'vitest';
import {
  FANOUT_CONTROLS,
  FANOUT_DEFAULTS,
  type FanoutInputs,
  fanout,
  fanoutTable,
  fanoutVerdict,
  formatBytes,
  formatCount,
  isCelebrity,
} from '../../src/site/simulators/fanout.ts';

const inputs = (changes: Partial<FanoutInputs> = {}): FanoutInputs => ({ ...FANOUT_DEFAULTS, ...changes });

describe('the fan-out simulator model', () => {
  it('starts from the defaults the lesson describes', () => {
    expect(FANOUT_DEFAULTS).toEqual({
      authorFollowers: 2_000_000,
      celebrityThresholdFollowers: 100_000,
      feedReadsPerSecond: 200_000,
      followsPerReader: 200,
      celebritiesFollowedPerReader: 5,
      pageSize: 20,
      activeUsers: 10_000_000,
      feedCapEntries: 200,
      bytesPerEntry: 123,
    });
    for (const control of FANOUT_CONTROLS)
      expect(control.values, `${control.name}: the default is one of the slider's stops`).toContain(
        control.defaultValue,
      );
  });

  it('prices push, pull and hybrid for a celebrity author with the default inputs', () => {
    const result = fanout(FANOUT_DEFAULTS);

    // Push: one insert per follower; one range read of a page (20 entries); 200,000 pages/s × 1.
    // Feeds: 10,000,000 users × 200 entries × 123 bytes = 246,000,000,000 bytes.
    expect(result.push).toEqual({
      writesPerPublish: 2_000_000,
      rangeReadsPerPage: 1,
      entriesReadPerPage: 20,
      rangeReadsPerSecond: 200_000,
      memoryBytes: 246_000_000_000,
    });
    // Pull: one insert into the author's timeline; 200 range reads of up to 20 entries = 4,000;
    // 200,000 × 200 = 40,000,000 reads/s; each post stored once instead of in ~200 feeds:
    // 246,000,000,000 / 200 = 1,230,000,000 bytes.
    expect(result.pull).toEqual({
      writesPerPublish: 1,
      rangeReadsPerPage: 200,
      entriesReadPerPage: 4_000,
      rangeReadsPerSecond: 40_000_000,
      memoryBytes: 1_230_000_000,
    });
    // Hybrid: 2,000,000 ≥ 100,000, so the post is written once; 1 + 5 range reads = 6, 120 entries,
    // 1,200,000 reads/s. Memory: the feeds plus at most 10,000,000 × 5 / 100,000 = 500 celebrity
    // timelines × 200 × 123 = 12,300,000 bytes, so 246,012,300,000.
    expect(result.authorIsCelebrity).toBe(true);
    expect(result.hybrid).toEqual({
      writesPerPublish: 1,
      rangeReadsPerPage: 6,
      entriesReadPerPage: 120,
      rangeReadsPerSecond: 1_200_000,
      memoryBytes: 246_012_300_000,
    });
  });

  it('pushes an author below the threshold and pulls one exactly at it', () => {
    expect(isCelebrity(99_999, 100_000)).toBe(false);
    expect(isCelebrity(100_000, 100_000)).toBe(true);

    expect(fanout(inputs({ authorFollowers: 99_999 })).hybrid.writesPerPublish).toBe(99_999);
    expect(fanout(inputs({ authorFollowers: 100_000 })).hybrid.writesPerPublish).toBe(1);
    expect(fanout(inputs({ authorFollowers: 1 })).push.writesPerPublish, 'one follower, one write').toBe(1);
    expect(fanout(inputs({ authorFollowers: 0 })).push.writesPerPublish, 'nobody to push to').toBe(0);
  });

  it('reads one key per page in the hybrid when the reader follows no celebrity', () => {
    const result = fanout(inputs({ celebritiesFollowedPerReader: 0 }));

    expect(result.hybrid.rangeReadsPerPage).toBe(1);
    // No follows into celebrities, so no celebrity timelines: the hybrid's memory is push's.
    expect(result.hybrid.memoryBytes).toBe(result.push.memoryBytes);
  });

  it('never counts more celebrities than the accounts a reader follows', () => {
    // 100 celebrities but only 10 follows: the hybrid reads 1 + 10 = 11, the same as pull's 10 plus the feed.
    const result = fanout(inputs({ followsPerReader: 10, celebritiesFollowedPerReader: 100 }));

    expect(result.hybrid.rangeReadsPerPage).toBe(11);
    expect(result.pull.rangeReadsPerPage).toBe(10);
  });

  it('stores as much for pull as for push when every reader follows one account', () => {
    // K = 1: each post has one follower on average, so one copy either way.
    const result = fanout(inputs({ followsPerReader: 1 }));

    expect(result.pull.memoryBytes).toBe(result.push.memoryBytes);
  });

  it('rounds the celebrity timeline bound down and guards a zero threshold', () => {
    // 10,000,000 × 5 / 3,000,000 = 16.67, so at most 16 accounts can each have 3,000,000 of those follows.
    const bound = fanout(inputs({ celebrityThresholdFollowers: 3_000_000 }));
    expect(bound.hybrid.memoryBytes - bound.push.memoryBytes).toBe(16 * 200 * 123);

    const zero = fanout(inputs({ celebrityThresholdFollowers: 0 }));
    expect(zero.authorIsCelebrity).toBe(true);
    expect(Number.isFinite(zero.hybrid.memoryBytes)).toBe(true);
  });

  it('formats counts and decimal bytes the same way everywhere', () => {
    expect(formatCount(40_000_000)).toBe('40,000,000');
    expect(formatCount(0)).toBe('0');
    expect(formatBytes(0)).toBe('0 bytes');
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(1_000)).toBe('1 KB');
    expect(formatBytes(24_600)).toBe('24.6 KB');
    expect(formatBytes(246_012_300_000)).toBe('246 GB');
    expect(formatBytes(1_230_000_000)).toBe('1.23 GB');
    expect(formatBytes(2.46e15)).toBe('2.46 PB');
  });

  it('turns the result into the table and sentence the page shows', () => {
    const result = fanout(FANOUT_DEFAULTS);

    expect(fanoutTable(result).map((row) => [row.label, row.cells.push, row.cells.pull, row.cells.hybrid])).toEqual([
      ['Feed writes per post', '2,000,000', '1', '1'],
      ['Range reads per page', '1', '200', '6'],
      ['Entries read per page', '20', '4,000', '120'],
      ['Range reads per second', '200,000', '40,000,000', '1,200,000'],
      ['Memory, feeds and timelines', '246 GB', '1.23 GB', '246 GB'],
    ]);
    expect(fanoutVerdict(FANOUT_DEFAULTS, result)).toMatch(/at or above the 100,000 threshold/);
    const ordinary = inputs({ authorFollowers: 500 });
    expect(fanoutVerdict(ordinary, fanout(ordinary))).toMatch(/500 followers the author is below/);
  });
});
