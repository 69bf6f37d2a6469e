/**
 * The checks a run makes with its tokenizer, its data and its model's shapes, through the built CLI and trainer:
 * each broken input gives `sculpt validate` and `sculpt run` the same error (exit 2, no run folder), and a
 * trainer started on a run folder of the same config (as the extension starts them) fails with that error as its
 * `error` event; an error of the config alone is one validation refuses, the trainer's included (it validates
 * the run folder's config again with the same function, config-validate.ts). A
 * warning (text the tokenizer mostly does not know) is printed by validate, which exits 0, and is a `warning`
 * event of the run. Needs `npm run build` first (npm test does it).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { join } from 'node:path';
import type { Example } from '../../src/data/examples';
import type { ExperimentConfig } from '../../src/protocol/config';
import { validateConfig } from '../../src/protocol/config-validate';
import { createExperiment } from '../../src/runs/experiment-dir';
import { repoRoot } from '../helpers/paths';
import { tinyExperiment, tinyTask, tinyTraining, writeExperiment } from '../helpers/experiment';
import { cli, events, trainer } from '../helpers/runs';

const MODELS = join(repoRoot, 'assets', 'models');
const work = mkdtempSync(join(tmpdir(), 'sculpt-input-checks-'));
after(() => rmSync(work, { recursive: true, force: true }));

function jsonl(file: string, rows: Example[]): string {
  writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return file;
}

/** A task `name` of JSONL files in `dir`, each example repeated so that a validation split leaves enough. */
function jsonlTask(dir: string, name: string, train: Example[], test: Example[]) {
  const times = (rows: Example[], n: number) =>
    rows.flatMap((r) =>
      Array.from({ length: n }, (_, i) => ({ ...r, input: `${r.input} ${['cat', 'dog', 'owl'][i % 3]}` })),
    );
  return {
    name,
    source: {
      train: jsonl(join(dir, `${name}.train.jsonl`), times(train, 3)),
      test: jsonl(join(dir, `${name}.test.jsonl`), test),
    },
  };
}

interface Case {
  name: string;
  /** The config (written to `dir`), given the folder it is in. */
  config: (dir: string) => Partial<ExperimentConfig>;
  /** The error, after `<config file>: `. */
  error: (dir: string) => string;
  /** An error of the config itself: no run folder can be made of it, so validation is checked instead. */
  configOnly?: true;
}

/** A task of the labels `sad`, `happy` and `angry` in its test data, words the tiny tokenizer knows. */
const moods = (dir: string, name: string, train: Example[]) =>
  jsonlTask(dir, name, train, [
    { input: 'good', output: 'happy' },
    { input: 'bad', output: 'sad' },
    { input: 'cruel', output: 'angry' },
  ]);

const CASES: Case[] = [
  {
    name: 'a label the tokenizer reads as <unk>',
    config: (dir) => ({
      tasks: [
        jsonlTask(
          dir,
          'mood',
          [
            { input: 'good', output: 'happy' },
            { input: 'bad', output: 'joyful' },
          ],
          [{ input: 'good', output: 'happy' }],
        ),
      ],
    }),
    error: () =>
      "tasks[0].labels: label of task 'mood' with words the tokenizer (builtin:tiny-llama, 68 tokens) does not know: 'joyful' is read as \"<unk>\"; the model cannot learn or score a label it reads as <unk> (every unknown word of the inputs is <unk> too). Use labels made of words the tokenizer knows, or a tokenizer that knows these (the `tokenizer` field)",
  },
  {
    name: 'two single-token labels with the same (first) token',
    config: (dir) => ({
      model: 'builtin:sculpt-base',
      tasks: [
        jsonlTask(
          dir,
          'mail',
          [
            { input: 'win money now', output: 'Spam' },
            { input: 'see you at lunch', output: 'spam' },
          ],
          [{ input: 'free money', output: 'Spam' }],
        ),
      ],
    }),
    error: () =>
      "tasks[0].labels: labels 'Spam', 'spam' of task 'mail' encode to the same tokens (\" spam\"), so rank evaluation cannot tell them apart and training teaches one answer for both. Make the labels differ in words the tokenizer (builtin:sculpt-base, 8192 tokens) keeps apart (a lowercasing tokenizer ignores case)",
  },
  {
    name: "a tokenizer larger than the model's vocabulary",
    config: () => ({ tokenizer: join(MODELS, 'sculpt-base') }),
    error: () =>
      `tokenizer: the tokenizer ${join(MODELS, 'sculpt-base', 'tokenizer.json')} has 8192 tokens, more than the 68 of the model (vocab_size in ${join(MODELS, 'tiny-llama', 'config.json')}, the rows of its embedding): token ids 68 to 8191 have no embedding. Use the tokenizer the model was trained with`,
  },
  {
    name: 'a checkpoint folder without tokenizer.json and no tokenizer field',
    config: (dir) => {
      cpSync(join(MODELS, 'tiny-llama'), join(dir, 'model'), { recursive: true });
      rmSync(join(dir, 'model', 'tokenizer.json'));
      return { model: 'model' };
    },
    error: (dir) =>
      `model: checkpoint folder ${join(dir, 'model')} has no tokenizer.json; give the model's tokenizer with the \`tokenizer\` field (a tokenizer folder or a tokenizer.json file, relative to the config file)`,
  },
  {
    name: "a fixed rank policy's k above a target matrix's dimensions",
    config: () => ({ methods: [{ method: 'adaptive-svd', rank: { policy: 'fixed', k: 100000 } }] }),
    error: () =>
      'methods[0].rank.k: k = 100000 exceeds min(d_out, d_in) = 32 of model.layers.0.self_attn.q_proj.weight; k can be at most 16 for the target matrices of this model (ratio or effectiveRank gives each matrix its own share)',
  },
  {
    name: 'adaptive-svd targets that select no matrix of the model',
    config: () => ({ methods: [{ method: 'adaptive-svd', targets: ['cross-attention'] }] }),
    error: () => 'methods[0].targets: selects no weight matrix of this model',
  },
  {
    name: "an O-LoRA rank above its projections' dimensions",
    config: () => ({ methods: [{ method: 'o-lora', r: 20, modules: ['q', 'v'] }] }),
    error: () =>
      'methods[0].r: rank 20 exceeds min(d_out, d_in) = 16 of model.layers.0.self_attn.v_proj; r can be at most 16 for the projections of this model that `modules` names',
  },
  {
    name: 'training data of one output, test data of three, no labels',
    config: (dir) => ({
      tasks: [
        moods(dir, 'review', [
          { input: 'bad', output: 'sad' },
          { input: 'dark', output: 'sad' },
        ]),
      ],
    }),
    error: () =>
      "tasks[0].labels: the training data of task 'review' has only one distinct output ('sad'), while its test data also has 'happy', 'angry'; without `labels` the label set rank evaluation scores against is the training data's distinct outputs: declare the label set with `labels` ([\"sad\",\"happy\",\"angry\"]) or add training examples of those outputs",
  },
  {
    name: 'a test output that trainLimit left out of the training data, no labels',
    config: (dir) => ({
      eval: { validation: 0 },
      tasks: [
        {
          ...moods(dir, 'review', [
            { input: 'bad', output: 'sad' },
            { input: 'good', output: 'happy' },
            { input: 'cruel', output: 'angry' },
          ]),
          trainLimit: 2,
        },
      ],
    }),
    error: () =>
      'tasks[0].labels: test output \'angry\' of task \'review\' is not in the label set (sad, happy), the training data\'s distinct outputs after trainLimit (2); declare the label set with `labels` (["sad","happy","angry"]), raise trainLimit, or add training examples of that output',
  },
  {
    name: 'a template without {input}',
    configOnly: true,
    config: () => ({ tasks: [tinyTask('sentiment', 'sentiment', { template: 'Topic:' })] }),
    error: () =>
      "tasks[0].template: has no {input}, so no prompt shows the model the example it is about. The placeholders are {input} and {instruction} (the example's fields)",
  },
  {
    name: 'a template with a misspelt placeholder',
    configOnly: true,
    config: () => ({ tasks: [tinyTask('sentiment'), tinyTask('topic', 'topic', { template: '{inptu}\nAnswer:' })] }),
    error: () =>
      "tasks[1].template: {inptu} is not a placeholder (did you mean {input}?) and would stay in every prompt as text; it has no {input}, so no prompt shows the model the example it is about. The placeholders are {input} and {instruction} (the example's fields)",
  },
  {
    name: 'an empty label',
    configOnly: true,
    config: () => ({ tasks: [tinyTask('sentiment', 'sentiment', { labels: ['good', '', 'bad'] })] }),
    error: () =>
      "tasks[0].labels[1]: is an empty label of task 'sentiment'; a label is an answer the model is taught and scored on, so it needs text",
  },
  {
    name: 'a seed count of 0',
    configOnly: true,
    config: () => ({ seeds: 0 }),
    error: () =>
      'seeds: must be >= 1, got 0 (Seeds to repeat every (method, order) with: a list of seeds, or a count n meaning seeds 0 to n-1)',
  },
  {
    name: 'a negative seed in the list',
    configOnly: true,
    config: () => ({ seeds: [-1, 2] }),
    error: () => 'seeds[0]: must be >= 0, got -1',
  },
];

let count = 0;

function setUp(config: (dir: string) => Partial<ExperimentConfig>) {
  const dir = join(work, `c${count++}`);
  mkdirSync(dir);
  const output = join(dir, 'runs');
  const raw = tinyExperiment({ name: 'checks', output, training: tinyTraining({ epochs: 1 }), ...config(dir) });
  const cfg = writeExperiment(dir, raw);
  return { dir, cfg, raw, output };
}

/** The lines of `stderr` that are about `cfg`, warnings left out. */
const errorsOf = (stderr: string, cfg: string) =>
  stderr.split('\n').filter((l) => l.startsWith(`${cfg}: `) && !l.startsWith(`${cfg}: warning: `));

for (const c of CASES) {
  const last = c.configOnly ? 'validation refuses it' : 'a trainer fails with it';
  test(`${c.name}: validate and run exit 2 with the same error; ${last}`, async () => {
    const { dir, cfg, raw, output } = setUp(c.config);
    const expected = `${cfg}: ${c.error(dir)}`;
    const v = cli('validate', cfg);
    assert.equal(v.status, 2, v.stderr);
    assert.equal(v.stdout, '');
    assert.deepEqual(errorsOf(v.stderr, cfg), [expected]);
    const r = cli('run', cfg);
    assert.equal(r.status, 2, r.stderr);
    assert.deepEqual(errorsOf(r.stderr, cfg), [expected]);
    assert.ok(!existsSync(output) || readdirSync(output).length === 0, `no run folder in ${output}`);
    const { config, issues } = validateConfig(structuredClone(raw), { file: cfg, path, exists: existsSync });
    if (c.configOnly) {
      assert.equal(config, undefined);
      assert.deepEqual(
        issues.map((i) => `${cfg}: ${i.path}: ${i.message}`),
        [expected],
      );
      return;
    }
    // A run folder of the config, made without the CLI's checks: the trainer's own start refuses it.
    assert.ok(config);
    const [cell] = createExperiment(config, { configFile: cfg }).cells;
    const code = await trainer(cell, () => {});
    assert.equal(code, 1);
    const error = events(cell).find((e) => e.type === 'error');
    assert.ok(error && error.type === 'error');
    assert.equal(`${cfg}: ${error.message}`, expected);
    assert.equal(
      events(cell).some((e) => e.type === 'run-started'),
      false,
    );
  });
}

test('the tokenizer field gives a checkpoint folder without one its tokenizer', () => {
  const { cfg } = setUp((dir) => {
    cpSync(join(MODELS, 'tiny-llama'), join(dir, 'model'), { recursive: true });
    rmSync(join(dir, 'model', 'tokenizer.json'));
    cpSync(join(MODELS, 'tiny-llama', 'tokenizer.json'), join(dir, 'tokenizer.json'));
    return { model: 'model', tokenizer: 'tokenizer.json' };
  });
  const v = cli('validate', cfg);
  assert.equal(v.status, 0, v.stderr);
  assert.match(v.stdout, /valid \(2 tasks;/);
});

test('text the tokenizer mostly does not know: validate warns and exits 0, the run says it as a warning event', () => {
  const { cfg, output } = setUp((dir) => ({
    tasks: [
      jsonlTask(
        dir,
        'odd',
        [
          { input: 'zorp blick good', output: 'happy' },
          { input: 'quux frob bad', output: 'sad' },
        ],
        [
          { input: 'zorp good', output: 'happy' },
          { input: 'frob bad', output: 'sad' },
        ],
      ),
    ],
  }));
  const v = cli('validate', cfg);
  assert.equal(v.status, 0, v.stderr);
  const prefix = `${cfg}: warning: `;
  const warnings = v.stderr
    .split('\n')
    .filter((l) => l.startsWith(prefix))
    .map((l) => l.slice(prefix.length));
  // Each training input is two unknown words of four tokens (the word appended by jsonlTask is known).
  assert.deepEqual(
    warnings.map((w) => w.slice(0, w.indexOf('. Use'))),
    [
      "task 'odd' (train): 50.0% of the input tokens (12 of 24) are unknown to the tokenizer (builtin:tiny-llama, 68 tokens) and read as <unk>",
      "task 'odd' (test): 50.0% of the input tokens (2 of 4) are unknown to the tokenizer (builtin:tiny-llama, 68 tokens) and read as <unk>",
    ],
  );
  const r = cli('run', cfg);
  assert.equal(r.status, 0, r.stderr);
  for (const w of warnings) assert.ok(r.stderr.includes(`sculpt: warning: ${w}`), r.stderr);
  const [experiment] = readdirSync(output);
  const [cell] = readdirSync(join(output, experiment)).filter((f) => f.startsWith('seqft'));
  // The run's input warnings are validate's (a one-answer warning after training is about the model, not the
  // inputs: the two-example task may well end on one answer).
  const emitted = events(join(output, experiment, cell)).filter((e) => e.type === 'warning' && e.code !== 'one-answer');
  assert.deepEqual(
    emitted.map((e) => e.type === 'warning' && [e.code, e.message]),
    warnings.map((w) => ['unknown-tokens', w]),
  );
});
