// `sculpt inspect`: the summary, logits/loss on a stored batch matching the reference, and exit code 2 with a
// message naming the bad argument or file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inspectCommand } from '../../src/cli/inspect';
import { readSafetensors, writeSafetensors } from '../../src/engine/io/safetensors';
import { runCommand } from '../helpers/console';
import { fixture } from '../helpers/paths';
import { relErr, tempDir } from './models-util';

const inspect = (...args: string[]) => runCommand(inspectCommand, args);

test('the summary names the architecture, counts parameters by group and lists the target matrices', async () => {
  const r = await inspect(fixture('hf-reference', 'llama-tiny'));
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /architecture {2}llama \(model_type llama, LlamaForCausalLM\): 2 layers, hidden 64, 4 heads \/ 2 kv heads of 16/,
  );
  // 2 x 512 x 64 (embedding + head) + 2 layers x (64·64·2 + 32·64·2 + 3·128·64 + 2·64) + 64
  assert.match(r.out, /parameters {4}139,584\n/);
  assert.match(r.out, /target matrices \(14\)/);
  assert.match(r.out, /1 +k +model\.layers\.1\.self_attn\.k_proj\.weight +\[32, 64\] +64 -> 32 +out_in/);
});

for (const backend of ['cpu', 'wasm']) {
  for (const name of ['gpt2-tiny', 'llama-tiny']) {
    test(`--input/--out on ${name} (${backend}): logits and loss match the reference`, async () => {
      const ref = fixture('hf-reference', name, 'reference.safetensors');
      const out = join(tempDir('inspect'), 'x.safetensors');
      const r = await inspect(fixture('hf-reference', name), '--input', ref, '--out', out, '--backend', backend);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /wrote logits \[2, 16, 512\] and loss 6\.\d+ to /);
      const got = readSafetensors(out).tensors;
      const want = readSafetensors(ref).tensors;
      assert.ok(relErr(got.get('logits')!.data as Float32Array, want.get('logits')!.data as Float32Array) <= 1e-4);
      assert.ok(relErr(got.get('loss')!.data as Float32Array, want.get('loss')!.data as Float32Array) <= 1e-5);
    });
  }
}

test('bad arguments and files exit 2 with a message naming them', async () => {
  const gpt2 = fixture('hf-reference', 'gpt2-tiny');
  const dir = tempDir('inspect-bad');
  const cases: [string[], RegExp][] = [
    [[], /give a checkpoint folder/],
    [['/no/such/dir'], /checkpoint folder not found: \/no\/such\/dir/],
    [[gpt2, '--frobnicate'], /unknown option '--frobnicate'; inspect's options are --input <in\.safetensors>/],
    [[gpt2, '--inptu', 'x'], /unknown option '--inptu' \(did you mean '--input'\?\)/],
    [['builtin:no-such-model'], /unknown builtin model 'no-such-model'; builtin models: /],
    [[gpt2, '--input', 'x.safetensors'], /--input and --out go together/],
    [[gpt2, '--backend', 'quantum'], /--backend 'quantum' is not one of/],
    [
      [gpt2, '--input', join(dir, 'missing.safetensors'), '--out', join(dir, 'o.safetensors')],
      /--input file not found: .*missing\.safetensors/,
    ],
    [[dir], /no config\.json/],
  ];
  const noIds = join(dir, 'no-ids.safetensors');
  writeSafetensors(noIds, { other: { dtype: 'F32', shape: [1], data: new Float32Array(1) } });
  cases.push([
    [gpt2, '--input', noIds, '--out', join(dir, 'o.safetensors')],
    /no-ids\.safetensors: no 'input\.input_ids' tensor \(it holds: other\)/,
  ]);
  const outOfVocab = join(dir, 'oov.safetensors');
  writeSafetensors(outOfVocab, {
    'input.input_ids': { dtype: 'I64', shape: [1, 2], data: BigInt64Array.from([1n, 9999n]) },
  });
  cases.push([
    [gpt2, '--input', outOfVocab, '--out', join(dir, 'o.safetensors')],
    /'input\.input_ids' holds 9999 at index 1, outside the vocabulary \[0, 512\)/,
  ]);
  const garbage = join(dir, 'garbage.safetensors');
  writeFileSync(garbage, 'not a safetensors file');
  cases.push([[gpt2, '--input', garbage, '--out', join(dir, 'o.safetensors')], /garbage\.safetensors/]);
  for (const [args, pattern] of cases) {
    const r = await inspect(...args);
    assert.equal(r.code, 2, `${args.join(' ')} -> ${r.code}`);
    assert.match(r.err, pattern);
  }
});
