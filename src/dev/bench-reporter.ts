/** For `npm run bench`: plain Vitest with nothing of ours but a line when each run ends. */
import type { Reporter } from 'vitest/node';

export default class BenchReporter implements Reporter {
  onTestRunEnd() {
    process.stdout.write('BENCH_RUN_END\n');
  }
}
