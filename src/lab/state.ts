import fs from 'node:fs';
import path from 'node:path';
import { EXERCISES_DIR, exercisePaths, ROOT } from '../course/paths.ts';
import { shippedStub } from '../course/pristine.ts';
import { verdictSummary, type ExerciseVerdict } from './verdict.ts';

/** The last verdict of one exercise, as the runner remembers it. */
export interface LastGrade {
  status: 'pass' | 'fail' | 'error';
  passed: number;
  total: number;
  summary?: string;
  /** The first failing test and the first line of its message, for the site's status panel. */
  firstFailing?: { name: string; reason?: string };
  /** The file graded was still the starting file: `lab list` and the site call that "not started". */
  untouched?: boolean;
  at: string;
}

/** What the runner remembers between runs, in .lab/state.json (git-ignored, the learner's own). */
export interface LabState {
  hintsShown: Record<string, number>;
  /** The last verdict per exercise, written by grade, list and watch alike. */
  lastGrade: Record<string, LastGrade>;
}

// LAB_STATE_FILE: the runner's own tests keep a learner's real progress out of their way.
export const STATE_FILE = process.env.LAB_STATE_FILE || path.join(ROOT, '.lab', 'state.json');

/** `file`: the site server reads a state file a test names, without setting the environment first. */
export function readState(file: string = STATE_FILE): LabState {
  try {
    const state = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<LabState>;
    return { hintsShown: state.hintsShown ?? {}, lastGrade: state.lastGrade ?? {} };
  } catch {
    // Missing or unreadable: start fresh rather than refuse to run.
    return { hintsShown: {}, lastGrade: {} };
  }
}

export function writeState(state: LabState) {
  fs.mkdirSync(path.dirname(STATE_FILE), { recursive: true });
  const temporary = `${STATE_FILE}.${process.pid}`;
  fs.writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(temporary, STATE_FILE); // atomic: a crash never leaves half a file
}

/** Remembers verdicts of the learner's own folder (grading another folder changes nothing). */
export function recordVerdicts(verdicts: ExerciseVerdict[], implRoot: string) {
  if (path.resolve(implRoot) !== EXERCISES_DIR) return;
  const state = readState();
  for (const verdict of verdicts) {
    const failing = verdict.tests.find((test) => test.status === 'fail');
    const reason = failing?.message
      ?.split('\n')
      .find((line) => line.trim())
      ?.trim();
    const source = exercisePaths(verdict.slug).source;
    const untouched = fs.existsSync(source) && shippedStub(verdict.slug) === fs.readFileSync(source, 'utf8');
    state.lastGrade[verdict.slug] = {
      status: verdict.status,
      passed: verdict.tests.filter((test) => test.status === 'pass').length,
      total: verdict.tests.length,
      summary: verdictSummary(verdict),
      ...(failing && { firstFailing: { name: failing.name, ...(reason && { reason: oneLine(reason) }) } }),
      ...(untouched && { untouched }),
      at: new Date().toISOString(),
    };
  }
  writeState(state);
}

const oneLine = (text: string) => (text.length > 160 ? `${text.slice(0, 159)}…` : text);
