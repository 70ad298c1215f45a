import fs from 'node:fs';
import path from 'node:path';
import { EXERCISES_DIR, ROOT } from '../course/paths.ts';
import { verdictSummary, type ExerciseVerdict } from './verdict.ts';

/** What the runner remembers between runs, in .lab/state.json (git-ignored, the learner's own). */
export interface LabState {
  hintsShown: Record<string, number>;
  /** The last verdict per exercise, written by grade, list and watch alike. */
  lastGrade: Record<
    string,
    { status: 'pass' | 'fail' | 'error'; passed: number; total: number; summary?: string; at: string }
  >;
}

// LAB_STATE_FILE: the runner's own tests keep a learner's real progress out of their way.
const FILE = process.env.LAB_STATE_FILE || path.join(ROOT, '.lab', 'state.json');

export function readState(): LabState {
  try {
    const state = JSON.parse(fs.readFileSync(FILE, 'utf8')) as Partial<LabState>;
    return { hintsShown: state.hintsShown ?? {}, lastGrade: state.lastGrade ?? {} };
  } catch {
    // Missing or unreadable: start fresh rather than refuse to run.
    return { hintsShown: {}, lastGrade: {} };
  }
}

export function writeState(state: LabState) {
  fs.mkdirSync(path.dirname(FILE), { recursive: true });
  const temporary = `${FILE}.${process.pid}`;
  fs.writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  fs.renameSync(temporary, FILE); // atomic: a crash never leaves half a file
}

/** Remembers verdicts of the learner's own folder (grading another folder changes nothing). */
export function recordVerdicts(verdicts: ExerciseVerdict[], implRoot: string) {
  if (path.resolve(implRoot) !== EXERCISES_DIR) return;
  const state = readState();
  for (const verdict of verdicts) {
    state.lastGrade[verdict.slug] = {
      status: verdict.status,
      passed: verdict.tests.filter((test) => test.status === 'pass').length,
      total: verdict.tests.length,
      summary: verdictSummary(verdict),
      at: new Date().toISOString(),
    };
  }
  writeState(state);
}
