// The methods' options checked against a model's shapes from its inventory alone (no weight read), as
// `sculpt validate`, `sculpt run` and every trainer's start check them (engine/run-inputs.ts), and as each
// method's setup checks them again on the loaded model through the same functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { checkModelFolder } from '../../src/engine/io/checkpoint';
import { methodModelIssues } from '../../src/engine/methods/model-checks';
import type { MethodConfig } from '../../src/protocol/config';
import { resolveMethod } from '../../src/protocol/config-validate';
import { repoRoot } from '../helpers/paths';

// builtin:tiny-llama: q and o 32 x 32, k and v 16 x 32 (two key-value heads), gate and up 64 x 32, down 32 x 64.
const inventory = checkModelFolder(join(repoRoot, 'assets', 'models', 'tiny-llama')).inventory;
const issuesOf = (...methods: MethodConfig[]) =>
  methodModelIssues(
    methods.map((m, i) => resolveMethod(m, `methods[${i}]`)),
    { inventory, arch: 'llama' },
  ).map((i) => `${i.path}: ${i.message}`);

test("adaptive-svd: a fixed k above a matrix's min(d_out, d_in) is an error; the matrices a rank pattern sets are not held to it", () => {
  assert.deepEqual(issuesOf({ method: 'adaptive-svd', rank: { policy: 'fixed', k: 16 } }), []);
  assert.deepEqual(issuesOf({ method: 'seqft' }, { method: 'adaptive-svd', rank: { policy: 'fixed', k: 100000 } }), [
    'methods[1].rank.k: k = 100000 exceeds min(d_out, d_in) = 32 of model.layers.0.self_attn.q_proj.weight; k can be at most 16 for the target matrices of this model (ratio or effectiveRank gives each matrix its own share)',
  ]);
  // k and v take the pattern's rank; every other target has min(d_out, d_in) = 32.
  assert.deepEqual(
    issuesOf({ method: 'adaptive-svd', rank: { policy: 'fixed', k: 20, rankPattern: { '[kv]_proj$': 4 } } }),
    [],
  );
  assert.deepEqual(issuesOf({ method: 'adaptive-svd', rank: { policy: 'fixed', k: 20 } }), [
    'methods[0].rank.k: k = 20 exceeds min(d_out, d_in) = 16 of model.layers.0.self_attn.k_proj.weight; k can be at most 16 for the target matrices of this model (ratio or effectiveRank gives each matrix its own share)',
  ]);
  // Ratios and effective ranks are clamped per matrix (with a warning at the boundary), never an error here.
  assert.deepEqual(issuesOf({ method: 'adaptive-svd', rank: { policy: 'fixed', effectiveRank: 1000 } }), []);
});

test('adaptive-svd: targets that select nothing, and rank patterns that match nothing, are errors at their paths', () => {
  assert.deepEqual(issuesOf({ method: 'adaptive-svd', targets: ['cross-attention'] }), [
    'methods[0].targets: selects no weight matrix of this model',
  ]);
  const [pattern, k] = issuesOf({
    method: 'adaptive-svd',
    rank: { policy: 'fixed', k: 100, rankPattern: { 'layers\\.9\\.': 4 } },
  });
  assert.match(
    pattern,
    /^methods\[0\]\.rank\.rankPattern\["layers\\\\\.9\\\\\."\]: matches none of the 14 target matrices/,
  );
  assert.match(k, /^methods\[0\]\.rank\.k: k = 100 exceeds/);
});

test("o-lora: a rank above a projection's min(d_out, d_in), or a module the model lacks, is an error", () => {
  assert.deepEqual(issuesOf({ method: 'o-lora', r: 16, modules: ['q', 'v'] }), []);
  assert.deepEqual(issuesOf({ method: 'o-lora', r: 20, modules: ['q'] }), []);
  assert.deepEqual(issuesOf({ method: 'o-lora', r: 20, modules: ['q', 'v'] }), [
    'methods[0].r: rank 20 exceeds min(d_out, d_in) = 16 of model.layers.0.self_attn.v_proj; r can be at most 16 for the projections of this model that `modules` names',
  ]);
  assert.deepEqual(issuesOf({ method: 'o-lora', modules: ['q', 'q'] }), ["methods[0].modules: names 'q' twice"]);
  // The other methods depend on no shape.
  assert.deepEqual(issuesOf({ method: 'seqft' }, { method: 'ewc' }, { method: 'replay' }), []);
});
