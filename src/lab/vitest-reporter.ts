/**
 * A Vitest reporter for the runner: one `LAB_MODULE <json>` line on stdout as each suite file
 * ends (so results survive if a later suite hangs and the run is killed), and one
 * `LAB_RUN_END <json>` line with errors no suite owns.
 */
import type { Reporter, TestModule } from 'vitest/node';

export interface ReportedTest {
  /** The test's full name: "core > a miss reads the database once…". */
  name: string;
  status: 'pass' | 'fail' | 'skip';
  message?: string;
}

export interface ReportedModule {
  file: string;
  /** Errors outside any test: a syntax error, a failed import, a hook that threw. */
  errors: string[];
  tests: ReportedTest[];
}

const describe = (error: { message?: string; stack?: string; name?: string }) => {
  const message = error.message ?? String(error);
  // Point at the learner's own file, where the error came from, when the stack shows it.
  const frame = error.stack?.split('\n').find((line) => /\/(exercises|solutions)\/|LAB_IMPL/.test(line) || (process.env.LAB_IMPL_ROOT && line.includes(process.env.LAB_IMPL_ROOT)));
  return frame && !message.includes(frame.trim()) ? `${message}\n    ${frame.trim()}` : message;
};

export default class LabReporter implements Reporter {
  onTestModuleEnd(module: TestModule) {
    const tests: ReportedTest[] = [];
    for (const test of module.children.allTests()) {
      const result = test.result();
      const status = result.state === 'passed' ? 'pass' : result.state === 'failed' ? 'fail' : 'skip';
      const message = result.state === 'failed' ? result.errors.map(describe).join('\n') : undefined;
      tests.push({ name: test.fullName, status, ...(message && { message }) });
    }
    const report: ReportedModule = { file: module.moduleId, errors: module.errors().map(describe), tests };
    process.stdout.write(`LAB_MODULE ${JSON.stringify(report)}\n`);
  }

  onTestRunEnd(_modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<{ message?: string; stack?: string }>) {
    process.stdout.write(`LAB_RUN_END ${JSON.stringify({ unhandled: unhandledErrors.map(describe) })}\n`);
  }
}
