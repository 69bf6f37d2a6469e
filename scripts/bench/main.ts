/**
 * `npm run bench -- [suite] [--json]`: benchmark harness. Each suite prints a Markdown table and, with
 * --json, a last line {"suite", "rows": [{name, ours, peer, unit, speedup}]} (speedup >= 1: Sculpt faster).
 */
import { runSvdBench } from './svd';
import { runModelsBench } from './models';
import { runTrainBench } from './train';
import { runDashboardBench } from './dashboard';
import { runGpuCheck } from './gpu';

const suites: Record<string, () => Promise<void>> = {
  svd: () => runSvdBench(process.argv.slice(2)),
  models: () => runModelsBench(process.argv.slice(2)),
  train: () => runTrainBench(process.argv.slice(2)),
  dashboard: () => runDashboardBench(process.argv.slice(2)),
  gpu: () => runGpuCheck(process.argv.slice(2)),
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const names = Object.keys(suites);
  if (!name || !(name in suites)) {
    console.error(`usage: npm run bench -- <suite> [--json]\nsuites: ${names.length ? names.join(', ') : '(none yet)'}`);
    return 2;
  }
  await suites[name]();
  return 0;
}

main().then((code) => (process.exitCode = code));
