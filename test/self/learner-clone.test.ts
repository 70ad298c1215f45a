// `npm test` in a clone where the learner has solved exercises: the dev check proves the shipped
// starting files fail, and ignores the learner's solved copies and their own extra files.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { exercisePaths } from '../../src/course/paths.ts';
import { pristineStub, shippedStub, TODO_MARKER } from '../../src/course/pristine.ts';
import { checkLayout } from '../../src/dev/check.ts';

const paths = exercisePaths('cache-aside');
const original = fs.readFileSync(paths.stub, 'utf8');
const extra = path.join(path.dirname(paths.stub), 'my-notes.ts');

afterEach(() => {
  fs.writeFileSync(paths.stub, original);
  fs.rmSync(extra, { force: true });
});

describe('a learner who solved an exercise', () => {
  test('the check takes the shipped starting file, not their solution, and their own files are theirs', () => {
    fs.writeFileSync(paths.stub, fs.readFileSync(paths.solution, 'utf8'));
    fs.writeFileSync(extra, '// scratch\n');

    const stub = pristineStub('cache-aside');
    const failing = checkLayout().filter((result) => !result.ok);

    expect(stub, 'the shipped starting file comes from content/starters/').toBe(fs.readFileSync(paths.starter, 'utf8'));
    expect(stub).toContain(TODO_MARKER);
    expect(failing.map((result) => result.name)).toEqual([]);
  });

  test('a stub a maintainer is still editing is checked as it is on disk', () => {
    const edited = `${shippedStub('cache-aside') ?? original}\n// a maintainer's change\n`;
    fs.writeFileSync(paths.stub, edited);

    expect(pristineStub('cache-aside')).toBe(edited);
  });
});
