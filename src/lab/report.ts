/**
 * What the test process reports of a suite, and how an assertion error becomes a message a
 * learner can act on: the assertion's own words, then the values that differ as a diff, then
 * the line of the learner's file it came from. Long values are cut with a note, never elided
 * into `[ …(3) ]` (the graded project sets chai's truncateThreshold to 0 for that).
 */
export interface ReportedTest {
  /** The test's full name: "core > a miss reads the database once…". */
  name: string;
  status: 'pass' | 'fail' | 'skip';
  message?: string;
  /** What the learner's code printed (console.log / console.error) during this test. */
  output?: string;
  /** Characters of output left out past the cap. */
  outputCut?: number;
}

export interface ReportedModule {
  file: string;
  /** Errors outside any test: a syntax error, a failed import, a hook that threw. */
  errors: string[];
  tests: ReportedTest[];
}

export const MESSAGE_CAP = 2_000;
export const DIFF_LINE_CAP = 40;
export const OUTPUT_CAP = 2_000;

const cut = (text: string, cap: number) =>
  text.length <= cap ? text : `${text.slice(0, cap)}… (${text.length - cap} more characters)`;

/** Keeps the first `cap` lines of a diff and says how many were left out. */
export function capDiff(diff: string, cap = DIFF_LINE_CAP): string {
  const lines = diff.replace(/\u001b\[[0-9;]*m/g, '').split('\n');
  if (lines.length <= cap) return lines.join('\n');
  return [...lines.slice(0, cap), `… (${lines.length - cap} more lines of the diff)`].join('\n');
}

export interface ErrorLike {
  message?: string;
  stack?: string;
  diff?: string;
  name?: string;
}

const implRoots = () =>
  [process.env.LAB_IMPL_ROOT, process.env.LAB_IMPL_SHOWN].filter((root): root is string => !!root);

/** An assertion error or a thrown error as the learner reads it. */
export function describeError(error: ErrorLike): string {
  const message = cut((error.message ?? String(error)).replace(/\u001b\[[0-9;]*m/g, ''), MESSAGE_CAP);
  const parts = [message];
  if (error.diff) parts.push(capDiff(error.diff));
  // Point at the learner's own file, where the error came from, when the stack shows it.
  const roots = implRoots();
  const frame = error.stack
    ?.split('\n')
    .find((line) => /\/(exercises|solutions)\//.test(line) || roots.some((root) => line.includes(root)));
  if (frame && !message.includes(frame.trim())) parts.push(`    ${frame.trim()}`);
  return parts.join('\n');
}

export interface CapturedOutput {
  text: string;
  cut: number;
}

/** Appends console output up to OUTPUT_CAP characters and counts what is left out. */
export function captureOutput(captured: CapturedOutput, text: string): CapturedOutput {
  const content = text.replace(/\u001b\[[0-9;]*m/g, '');
  const room = OUTPUT_CAP - captured.text.length;
  if (room >= content.length) return { text: captured.text + content, cut: captured.cut };
  return {
    text: captured.text + content.slice(0, Math.max(0, room)),
    cut: captured.cut + content.length - Math.max(0, room),
  };
}
