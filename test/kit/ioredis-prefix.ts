/**
 * ioredis applies `keyPrefix` only at the key positions @ioredis/commands lists, and it lists none
 * for the container commands XGROUP and XINFO. With a prefix, `xgroup('CREATE', 'jobs', …)` on a
 * real server would create the bare `jobs`, outside the test's keyspace (never cleaned up), and the
 * prefixed XREADGROUP would then fail with NOGROUP. Redis puts their key right after the
 * subcommand (XGROUP CREATE key …, XINFO STREAM key), so the kit tells ioredis so, for every
 * client in the thread: the learner's, the test's, and pipelines and MULTI alike. The mock applies
 * the prefix itself (mock-streams.ts); test/self/mock-streams.test.ts compares the two.
 * Production code with a keyPrefix has the same gap: docs/redis-mock.md says so.
 */
import { createRequire } from 'node:module';

const requireFromIoredis = createRequire(createRequire(import.meta.url).resolve('ioredis'));
const commands = requireFromIoredis('@ioredis/commands') as {
  getKeyIndexes: (name: string, args: unknown[], options?: unknown) => number[];
  __labPrefixFix?: true;
};

if (!commands.__labPrefixFix) {
  const getKeyIndexes = commands.getKeyIndexes;
  commands.getKeyIndexes = (name, args, options) =>
    ['xgroup', 'xinfo'].includes(String(name).toLowerCase()) &&
    args.length >= 2 &&
    String(args[0]).toUpperCase() !== 'HELP'
      ? [1]
      : getKeyIndexes(name, args, options);
  commands.__labPrefixFix = true;
}
