/// <reference lib="dom" />
/*
 * Live progress from the runner on the exercise pages and the exercise index. Only `npm start`
 * (src/site/lab-server.ts) serves the API, and it marks every page it serves with
 * <meta name="course-lab">; without that mark (a static host, `astro dev`) this script does
 * nothing at all, so the page stays exactly as built and makes no request that could fail.
 *
 * One event stream, no separate fetch: its first event is the current state, so there is no
 * window between reading the state and subscribing in which a grade could be missed.
 */
import type { ExerciseProgress, Progress } from './lab-server.ts';

const LABELS: Record<ExerciseProgress['status'], string> = {
  'not-started': 'Not started',
  failing: 'Failing',
  error: 'Error',
  solved: 'Solved',
};

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * The state in words (never colour alone). `brief`: the index's one line per exercise, without
 * the first failing test.
 */
function describe(progress: ExerciseProgress, brief: boolean): string {
  const details: string[] = [];
  if (progress.status === 'solved') {
    details.push(`all ${plural(progress.total, 'test')} pass.`);
    if (!brief) details.push('The reference solution and its walkthrough are now shown under “Reference solution”.');
  } else if (progress.status !== 'not-started') {
    details.push(`${progress.passed} of ${plural(progress.total, 'test')} pass.`);
    const first = progress.firstFailing;
    const why = progress.summary?.split('; ')[1];
    if (!brief && first) details.push(`First failing test: “${first.name}”${first.reason ? `: ${first.reason}` : '.'}`);
    else if (!brief && why) details.push(why);
    else if (!brief && progress.summary?.includes('type errors'))
      details.push('The tests pass, but the file has type errors.');
  }
  if (progress.hintsTotal > 0) details.push(`${progress.hintsUsed} of ${plural(progress.hintsTotal, 'hint')} used.`);
  if (progress.at && progress.status !== 'not-started' && !brief)
    details.push(`(Graded at ${new Date(progress.at).toLocaleTimeString()}.)`);
  return details.join(' ');
}

/** Writes only when the text changes, so a live region announces real changes and nothing else. */
function fill(element: HTMLElement, progress: ExerciseProgress): void {
  const label = LABELS[progress.status];
  const details = describe(progress, element.hasAttribute('data-brief'));
  element.hidden = false;
  element.dataset.labState = progress.status;
  if (element.dataset.text === `${label}: ${details}`) return;
  element.dataset.text = `${label}: ${details}`;
  const strong = document.createElement('strong');
  strong.textContent = label;
  element.replaceChildren(strong, details ? `: ${details}` : '');
}

/** The reference solution, cloned from the page's template while the exercise passes. */
function showSolution(solved: boolean): void {
  const template = document.querySelector<HTMLTemplateElement>('template[data-course-solution]');
  const slot = document.querySelector<HTMLElement>('[data-solution-slot]');
  const locked = document.querySelector<HTMLElement>('[data-solution-locked]');
  if (!template || !slot) return;
  if (solved && !slot.hasChildNodes()) slot.append(template.content.cloneNode(true));
  if (!solved) slot.replaceChildren();
  slot.hidden = !solved;
  if (locked) locked.hidden = solved;
}

function render(progress: Progress): void {
  for (const element of document.querySelectorAll<HTMLElement>('[data-lab-status]')) {
    const mine = progress[element.dataset.slug ?? ''];
    if (mine) fill(element, mine);
  }
  const page = document.querySelector<HTMLElement>('[data-lab-status][data-page]')?.dataset.slug;
  if (page) showSolution(progress[page]?.status === 'solved');
  const summary = document.querySelector<HTMLElement>('[data-lab-summary]');
  if (summary) {
    const all = Object.values(progress);
    const solved = all.filter((exercise) => exercise.status === 'solved').length;
    summary.hidden = false;
    const text = `Your progress from the runner: ${solved} of ${plural(all.length, 'exercise')} solved.`;
    if (summary.textContent !== text) summary.textContent = text;
  }
}

const api = document.querySelector<HTMLMetaElement>('meta[name="course-lab"]')?.content;
if (api && typeof EventSource === 'function') {
  const events = new EventSource(`${api}events`);
  events.addEventListener('progress', (event) => {
    try {
      render(JSON.parse((event as MessageEvent<string>).data) as Progress);
    } catch {
      // A malformed event leaves the page as it was rather than half-updated.
    }
  });
}
