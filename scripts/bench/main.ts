/**
 * `npm run bench -- [suite] [--json]`: benchmark harness. Each suite prints a Markdown table and, with
 * --json, a last line {"suite", "rows": [{name, ours, peer, unit, speedup}]} (speedup >= 1: Sculpt faster).
 */
// Suites load on demand: the dashboard suite needs playwright-core (a dev dependency), which a GPU machine
// running only the gpu suite does not have.
const argv = () => process.argv.slice(2);
const suites: Record<string, () => Promise<void>> = {
  svd: async () => (await import('./svd')).runSvdBench(argv()),
  models: async () => (await import('./models')).runModelsBench(argv()),
  train: async () => (await import('./train')).runTrainBench(argv()),
  dashboard: async () => (await import('./dashboard')).runDashboardBench(argv()),
  gpu: async () => (await import('./gpu')).runGpuCheck(argv()),
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
