// The mutation corpus loader: patches apply to the reference or fail loudly; headers are checked.
import { describe, expect, test } from 'vitest';
import { applyPatch, parseHeader } from '../../src/dev/corpus.ts';

const reference = ['const a = 1;', 'const b = 2;', 'const c = 3;', 'export { a, b, c };'].join('\n');

describe('mutation corpus', () => {
  test('a patch of the reference turns it into the mutant', () => {
    const patch = [
      '--- a',
      '+++ b',
      '@@ -1,3 +1,4 @@',
      '+/** @mutant b is off by one, which the suite must notice. @caught-by off by one */',
      ' const a = 1;',
      '-const b = 2;',
      '+const b = 3; // MUTANT',
      ' const c = 3;',
      '',
    ].join('\n');

    const mutant = applyPatch(reference, patch);

    expect(mutant.split('\n')).toEqual([
      '/** @mutant b is off by one, which the suite must notice. @caught-by off by one */',
      'const a = 1;',
      'const b = 3; // MUTANT',
      'const c = 3;',
      'export { a, b, c };',
    ]);
  });

  test('a patch whose context the reference no longer has fails, naming the file', () => {
    const stale = ['@@ -2,1 +2,1 @@', '-const b = 20;', '+const b = 3;', ''].join('\n');

    expect(() => applyPatch(reference, stale, 'test/corpus/x/stale.patch')).toThrow(
      /test\/corpus\/x\/stale\.patch: hunk "@@ -2,1 \+2,1 @@" no longer matches/,
    );
  });

  test('headers say mutant with a pattern, or correct; anything else is an error', () => {
    const mutant = parseHeader(
      '/**\n * @mutant The lock is taken without a TTL, so a crash blocks the key.\n * @caught-by no TTL\n * @level staff\n */\n',
      'm.ts',
    );
    const correct = parseHeader(
      '/**\n * @correct WATCH/MULTI instead of a Lua script,\n *   retried when EXEC aborts.\n */\n',
      'c.ts',
    );

    expect(mutant).toEqual({
      kind: 'mutant',
      mutant: 'The lock is taken without a TTL, so a crash blocks the key.',
      caughtBy: 'no TTL',
      level: 'staff',
    });
    expect(correct).toEqual({
      kind: 'correct',
      correct: 'WATCH/MULTI instead of a Lua script, retried when EXEC aborts.',
    });
    expect(() => parseHeader('/** @mutant The lock has no TTL at all here. */', 'test/corpus/x/bad.ts')).toThrow(
      /test\/corpus\/x\/bad\.ts: .*@caught-by/,
    );
  });
});
