import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Loader } from 'astro/loaders';
import { loadExercises } from '../course/catalog.ts';
import { exercisePaths, METADATA_DIR, ROOT } from '../course/paths.ts';

/** Which README of an exercise an entry holds. */
export type ExerciseDocKind = 'task' | 'walkthrough';

/**
 * A README is written to be read in the repository too, so it starts with its own "# Title",
 * has a "## Run and grade" section, and may link to repository files. On the site the page
 * supplies the title and its own run-and-grade section (from the metadata), and links to lessons
 * and exercises become site links.
 */
export function adaptReadme(markdown: string, file: string): string {
  const withoutTitle = markdown
    .replace(/^\s*#[ \t]+[^\n]*\n+/, '')
    .replace(/^##[ \t]+Run and grade[ \t]*\n[\s\S]*?(?=^##[ \t]|(?![\s\S]))/m, '');
  const dir = path.dirname(file);
  return withoutTitle.replace(/\]\((?!\w+:|\/|#)([^)\s]+)\)/g, (all, target: string) => {
    const [pathPart = '', hash] = target.split('#');
    const repoPath = path.relative(ROOT, path.resolve(dir, pathPart)).replace(/\\/g, '/');
    const fragment = hash ? `#${hash}` : '';
    const lesson = /^content\/lessons\/([^/]+)\.mdx$/.exec(repoPath);
    if (lesson) return `](/lessons/${lesson[1]}/${fragment})`;
    const exercise = /^(?:content\/exercises\/([^/]+)\.json|exercises\/([^/]+)\/README\.md)$/.exec(repoPath);
    if (exercise) return `](/exercises/${exercise[1] ?? exercise[2]}/${fragment})`;
    return all;
  });
}

/**
 * Loads exercises/<slug>/README.md (the task) and solutions/<slug>/README.md (the walkthrough)
 * of every exercise with a metadata record, rendered with the site's Markdown pipeline.
 * Entry ids are "<slug>/task" and "<slug>/walkthrough"; a README not written yet has no entry.
 */
export function exerciseDocsLoader(): Loader {
  return {
    name: 'system-design-lab:exercise-docs',
    load: async ({ store, renderMarkdown, generateDigest, watcher }) => {
      const load = async () => {
        store.clear();
        const exercises = fs.existsSync(METADATA_DIR) ? loadExercises() : [];
        for (const exercise of exercises) {
          const paths = exercisePaths(exercise.slug);
          const docs: [ExerciseDocKind, string][] = [
            ['task', paths.readme],
            ['walkthrough', paths.walkthrough],
          ];
          for (const [kind, file] of docs) {
            if (!fs.existsSync(file)) continue;
            const body = adaptReadme(fs.readFileSync(file, 'utf8'), file);
            store.set({
              id: `${exercise.slug}/${kind}`,
              data: { slug: exercise.slug, kind },
              body,
              filePath: path.relative(ROOT, file),
              digest: generateDigest(body),
              rendered: await renderMarkdown(body, { fileURL: pathToFileURL(file) }),
            });
          }
        }
      };
      await load();
      watcher?.on('all', (_event, changed) => {
        if (/(?:^|[\\/])(?:exercises|solutions)[\\/][^\\/]+[\\/]README\.md$|content[\\/]exercises[\\/]/.test(changed))
          void load();
      });
    },
  };
}
