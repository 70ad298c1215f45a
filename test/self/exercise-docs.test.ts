import path from 'node:path';
import { expect, test } from 'vitest';
import { ROOT } from '../../src/course/paths.ts';
import { adaptReadme } from '../../src/site/exercise-docs-loader.ts';

const readme = path.join(ROOT, 'exercises', 'cache-aside', 'README.md');

test('on the site a task README loses its title and its run section, which the page generates', () => {
  const markdown =
    '# Title\n\nIntro\n\n## The API\n\nx\n\n## Run and grade\n\n```sh\nnpm run lab\n```\n\n## Notes\n\ny\n';

  expect(adaptReadme(markdown, readme)).toBe('Intro\n\n## The API\n\nx\n\n## Notes\n\ny\n');
});

test('repository links to lessons and exercises become site links', () => {
  const markdown =
    'See [the lesson](../../content/lessons/cache-strategies.mdx#the-stale-set-race) and [write-behind](../write-behind/README.md).';

  expect(adaptReadme(markdown, readme)).toBe(
    'See [the lesson](/lessons/cache-strategies/#the-stale-set-race) and [write-behind](/exercises/write-behind/).',
  );
});
