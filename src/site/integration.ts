import { fileURLToPath } from 'node:url';
import type { AstroIntegration } from 'astro';
import { ContentError } from '../course/catalog.ts';
import type { LoadedCourse } from '../course/course.ts';
import { checkCrossReferences, formatProblems } from '../course/cross-references.ts';
import { ROOT } from '../course/paths.ts';
import { satteriBaseLinksPlugin } from './base-links.ts';
import { courseData, courseDataPlugin } from './course-data.ts';
import { checkBuiltSite } from './link-check.ts';

interface SatteriProcessor {
  options?: { hastPlugins?: unknown[] };
}

/**
 * The course's build-time guard rails, as an Astro integration:
 * - cross-references between lessons, exercises and the quiz must resolve (the build fails,
 *   naming each file; `astro dev` only warns, so a half-written lesson can still be previewed);
 * - root-relative links in Markdown get the configured `base`;
 * - after the build, every internal link and anchor in dist/ must resolve.
 */
export function courseIntegration(course: LoadedCourse, watchFiles: readonly string[]): AstroIntegration {
  let base = '/';
  return {
    name: 'system-design-lab:course',
    hooks: {
      'astro:config:setup': ({ command, config, addWatchFile, updateConfig, logger }) => {
        for (const file of watchFiles) addWatchFile(file);
        updateConfig({ vite: { plugins: [courseDataPlugin(courseData(course, ROOT))] } });
        const problems = checkCrossReferences(course.references);
        if (problems.length > 0) {
          const message = `${problems.length} broken cross-reference${problems.length === 1 ? '' : 's'}:\n${formatProblems(problems)}`;
          if (command === 'build') throw new ContentError(message);
          logger.warn(message);
        }
        base = config.base;
        const processor = config.markdown.processor as SatteriProcessor | undefined;
        if (config.base !== '/' && processor?.options?.hastPlugins) {
          processor.options.hastPlugins.push(satteriBaseLinksPlugin(config.base));
        }
      },
      'astro:build:done': ({ dir, logger }) => {
        // Runs after Starlight's Pagefind step, so the search bundle is checked too.
        const problems = checkBuiltSite(fileURLToPath(dir), base);
        if (problems.length > 0) {
          throw new ContentError(
            `${problems.length} broken link${problems.length === 1 ? '' : 's'} in the built site:\n${formatProblems(problems)}`,
          );
        }
        logger.info('every internal link and anchor resolves');
      },
    },
  };
}
