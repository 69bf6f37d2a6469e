/**
 * `npm run bench -- [suite] [--json]`: benchmark harness. Each suite prints a Markdown table and, with
 * --json, a last line {"suite", "rows": [{name, ours, peer, unit, speedup}]} (speedup >= 1: Sculpt faster).
 * Suites:
 *   svd        task-boundary SVD of a GPT-2-small-shaped model beside torch.linalg.svd (svd.ts, svd_peer.py)
 *   models     forward + backward tokens/s of the tiny decoders (models.ts)
 *   train      training-step tokens/s per model, backend and method beside a PyTorch twin (train.ts, torch_twin.py)
 *   matmul     the wasm backend's products on the native BLAS against its wasm kernels: GFLOP/s per product shape
 *              of a training step, and step times (matmul.ts)
 *   eval       sculpt-base rank scoring examples/s and greedy generation tokens/s beside a PyTorch twin
 *              (eval.ts, eval_twin.py)
 *   memory     trainer peak RSS (seqft, adaptive-svd) and adaptive-svd's bases against the target matrices (memory.ts)
 *   dashboard  the dashboard ingesting and drawing a large run in Chromium (dashboard.ts)
 *   gpu        the webgpu backend on a GPU machine (gpu.ts)
 *   peers      every method at its defaults on the demo suite: the accuracy right after training each task
 *              against chance + 25 (peers.ts); exit code 1 when a method leaves a task below it
 */
// Suites load on demand: the dashboard suite needs playwright-core (a dev dependency), which a GPU machine
// running only the gpu suite does not have.
const argv = () => process.argv.slice(2);
// A suite may resolve to an exit code (peers: 1 when a method failed its check); otherwise 0.
const suites: Record<string, () => Promise<void | number>> = {
  svd: async () => (await import('./svd')).runSvdBench(argv()),
  models: async () => (await import('./models')).runModelsBench(argv()),
  train: async () => (await import('./train')).runTrainBench(argv()),
  matmul: async () => (await import('./matmul')).runMatmulBench(argv()),
  eval: async () => (await import('./eval')).runEvalBench(argv()),
  memory: async () => (await import('./memory')).runMemoryBench(argv()),
  dashboard: async () => (await import('./dashboard')).runDashboardBench(argv()),
  gpu: async () => (await import('./gpu')).runGpuCheck(argv()),
  peers: async () => (await import('./peers')).runPeersBench(argv()),
};

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const name = args.find((a) => !a.startsWith('--'));
  const names = Object.keys(suites);
  if (!name || !(name in suites)) {
    console.error(
      `usage: npm run bench -- <suite> [--json]\nsuites: ${names.length ? names.join(', ') : '(none yet)'}`,
    );
    return 2;
  }
  const code = await suites[name]();
  return typeof code === 'number' ? code : 0;
}

main().then((code) => (process.exitCode = code));
