// The input checks of a run (src/engine/data/coverage.ts, src/engine/run-inputs.ts): unknown tokens, truncation
// and label problems counted on small hand-made tasks with the builtin tokenizers, where every number can be
// counted by hand; and the tokenizer of a run found, checked against the model and named in the errors.
import { after, test } from 'node:test';
import { execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { join } from 'node:path';
import { loadTokenizer, trainTokenizer, unknownTokenId, Tokenizer } from '../../src/engine/io/tokenizer';
import {
  coverageFindings,
  taskCoverage,
  type CoverageOptions,
  type CoverageTask,
  type TaskCoverage,
} from '../../src/engine/data/coverage';
import { rankInputs } from '../../src/engine/evaluate';
import { encodeExample } from '../../src/engine/data/batches';
import type { CausalLM } from '../../src/engine/models/types';
import type { Example } from '../../src/data/examples';
import { checkRunInputs, tokenizerSource } from '../../src/engine/run-inputs';
import { checkModelFolder } from '../../src/engine/io/checkpoint';
import { loadTasks, modelDir } from '../../src/engine/experiment';
import { validateConfig } from '../../src/protocol/config-validate';
import { ConfigError } from '../../src/protocol/errors';
import type { ExperimentConfig } from '../../src/protocol/config';
import { fixture, repoRoot } from '../helpers/paths';
import { tinyExperiment, writeExperiment } from '../helpers/experiment';

const MODELS = join(repoRoot, 'assets', 'models');
// 68 words, no lowercasing: good, bad, cat, dog, owl, big, happy, sad, angry, Answer, ':' ... and <unk> = 3.
const tiny = loadTokenizer(join(MODELS, 'tiny-llama'));
// A lowercase byte-level BPE of 8,192 tokens: no unknown token, labels one token each.
const base = loadTokenizer(join(MODELS, 'sculpt-base'));

const TEMPLATE = '{instruction}{input}\nAnswer:';

function task(train: Example[], test: Example[], labels = [...new Set(train.map((e) => e.output))]): CoverageTask {
  return { name: 't', train, test, labels, template: TEMPLATE };
}

function cover(t: CoverageTask, opts: Partial<CoverageOptions> = {}, tok: Tokenizer = tiny): TaskCoverage {
  return taskCoverage(tok, t, {
    kind: 'causal',
    maxSeqLen: 64,
    unkId: unknownTokenId(tok),
    modes: ['rank'],
    maxNewTokens: 4,
    ...opts,
  });
}

const findings = (c: TaskCoverage, modes: ('rank' | 'generate')[] = ['rank'], maxSeqLen = 64) =>
  coverageFindings(c, 'tasks[0]', { maxSeqLen, tokenizer: 'tiny', modes });

const TRAIN: Example[] = [
  { input: 'good cat', output: 'happy' }, // 2 tokens
  { input: 'bad zebra dog', output: 'sad' }, // 3 tokens, 'zebra' unknown
  { input: 'qwerty xyzzy', output: 'sad' }, // 2 tokens, both unknown
  { instruction: 'big ', input: 'owl', output: 'happy' }, // 2 tokens (instruction and input)
];
const TEST: Example[] = [
  { input: 'good dog', output: 'happy' },
  { input: 'sad fox', output: 'sad' },
];

test('the unknown token is the tokenizer model’s own: <unk> of a word-level or Unigram model, none for byte-level BPE', () => {
  assert.equal(unknownTokenId(tiny), 3);
  assert.equal(unknownTokenId(loadTokenizer(fixture('unigram-t5'))), 2);
  assert.equal(unknownTokenId(trainTokenizer(['some text here', 'more text'], { vocabSize: 300 })), null);
});

test('unknown tokens: counted over instruction and input tokens, with the inputs that are unknown in every token', () => {
  const c = cover(task(TRAIN, TEST));
  assert.deepEqual(
    { tokens: c.train.inputTokens, unknown: c.train.unknownTokens, whole: c.train.unknownInputs },
    { tokens: 9, unknown: 3, whole: 1 },
  );
  assert.deepEqual(
    { tokens: c.test.inputTokens, unknown: c.test.unknownTokens, whole: c.test.unknownInputs },
    {
      tokens: 4,
      unknown: 0,
      whole: 0,
    },
  );
  const { issues, warnings } = findings(c);
  assert.deepEqual(issues, []);
  assert.deepEqual(
    warnings.map((w) => w.code),
    ['unknown-tokens'],
  );
  assert.match(
    warnings[0].message,
    /^task 't' \(train\): 33\.3% of the input tokens \(3 of 9\) are unknown to the tokenizer \(tiny\) and read as <unk>; 1 of 4 inputs is unknown in every token/,
  );
});

test('unknown tokens: a warning above 15% of a split’s input tokens, or for one input unknown in every token', () => {
  // 20 input tokens (19 and 'dog'): 3 unknown are 15%, no warning; 4 unknown are 20%.
  const words = (n: number, unknown: number) =>
    Array.from({ length: n }, (_, i) => (i < unknown ? 'zebra' : 'cat')).join(' ');
  const at = (unknown: number) =>
    findings(
      cover(
        task(
          [
            { input: words(19, unknown), output: 'happy' },
            { input: 'dog', output: 'sad' },
          ],
          TEST,
        ),
      ),
    ).warnings.filter((w) => w.code === 'unknown-tokens');
  assert.equal(at(3).length, 0);
  assert.equal(at(4).length, 1);
  // One input of one unknown word among 40 known tokens: 2.4%, but that input says nothing.
  const lone = cover(
    task(
      [
        { input: words(40, 0), output: 'happy' },
        { input: 'zebra', output: 'sad' },
      ],
      TEST,
    ),
  );
  assert.equal(lone.train.unknownInputs, 1);
  assert.match(findings(lone).warnings[0].message, /2\.4% .* 1 of 2 inputs is unknown in every token/);
});

test('truncation: training examples cut as training cuts them, test prompts as rank evaluation cuts them', () => {
  // maxSeqLen 7 leaves a training prompt 7 - 1 (BOS) - 2 (answer, EOS) = 4 tokens: only 'bad zebra dog' (5
  // tokens with "Answer" and ":") is cut. Rank evaluation of single-token labels leaves a test prompt 6.
  const t = task(TRAIN, [...TEST, { input: 'big bad cat dog', output: 'sad' }, { input: 'cat', output: 'happy' }]);
  const c = cover(t, { maxSeqLen: 7 });
  assert.equal(c.train.truncated, 1);
  assert.equal(c.train.longestPrompt, 6); // BOS and 5 tokens
  // What evaluation feeds the model, from evaluate.ts itself.
  const model = { nextTokenLogProbs: () => Promise.resolve([]) } as unknown as CausalLM;
  const fullLength = (e: Example) => encodeExample(tiny, TEMPLATE, e, 1000, false).prompt.length;
  for (const maxSeqLen of [5, 6, 7, 8]) {
    const inputs = rankInputs(model, tiny, t, maxSeqLen);
    const evalCut = inputs.prompts.filter((p, i) => p.length < fullLength(t.test[i])).length;
    assert.equal(cover(t, { maxSeqLen }).test.truncated, evalCut, `maxSeqLen ${maxSeqLen}`);
  }
  assert.equal(cover(t, { maxSeqLen: 6 }).test.truncated, 1);
  // Multi-token labels are scored whole: the prompt leaves room for the longest with EOS.
  const multi = task(TRAIN, t.test, ['happy', 'sad', 'big sad cat']);
  for (const maxSeqLen of [8, 9, 10]) {
    const inputs = rankInputs({} as CausalLM, tiny, multi, maxSeqLen);
    assert.equal(inputs.mode, 'cont');
    const evalCut = t.test.filter((e, i) => inputs.prompts[i * 3].length < fullLength(e)).length;
    assert.equal(cover(multi, { maxSeqLen }).test.truncated, evalCut, `maxSeqLen ${maxSeqLen}`);
  }
});

test('truncation: a warning when more than 5% of a split’s prompts are cut; an encoder-decoder cuts its encoder input', () => {
  const long = { input: 'big bad cat dog owl', output: 'sad' };
  const short = { input: 'cat', output: 'happy' };
  const train = (cut: number, of: number) => [
    ...Array.from({ length: cut }, () => long),
    ...Array.from({ length: of - cut }, () => short),
  ];
  const warned = (cut: number, of: number) =>
    findings(cover(task(train(cut, of), TEST), { maxSeqLen: 7 }), ['rank'], 7).warnings.filter(
      (w) => w.code === 'truncated-inputs',
    );
  assert.equal(warned(1, 20).length, 0);
  const w = warned(2, 20);
  assert.equal(w.length, 1);
  assert.match(
    w[0].message,
    /^task 't' \(train\): 2 of 20 prompts are too long for training\.maxSeqLen \(7 tokens with the answer\), so 10\.0% of the prompts lose their beginning; the longest has 8 tokens/,
  );
  // Generation keeps eval.maxNewTokens of the window: test prompts shorter than maxSeqLen are cut, and the
  // warning says why rather than leaving a longest prompt under maxSeqLen unexplained.
  const shortTest = Array.from({ length: 10 }, () => ({ input: 'good cat', output: 'happy' }));
  const gen = coverageFindings(
    cover(task(TRAIN, shortTest), { maxSeqLen: 7, modes: ['generate'], maxNewTokens: 4 }),
    'tasks[0]',
    {
      maxSeqLen: 7,
      tokenizer: 'tiny',
      modes: ['generate'],
      maxNewTokens: 4,
    },
  ).warnings.filter((x) => x.code === 'truncated-inputs' && x.message.includes('(test)'));
  assert.equal(gen.length, 1);
  assert.match(
    gen[0].message,
    /\(7 tokens with the answer; generation keeps eval\.maxNewTokens \(4\) of them for its output\), so 100\.0% of the prompts lose their beginning; the longest has \d+ tokens\. Raise training\.maxSeqLen, lower eval\.maxNewTokens or shorten the inputs$/,
  );
  // T5-style: the prompt and EOS must fit maxSeqLen on their own.
  const t5 = loadTokenizer(join(MODELS, 'tiny-t5'));
  const c = cover(task([long, short], [short]), { kind: 'seq2seq', maxSeqLen: 7 }, t5);
  assert.deepEqual([c.train.truncated, c.train.longestPrompt, c.test.truncated], [1, 8, 0]);
});

test('labels read as <unk> and labels that encode alike are errors naming the task and the labels', () => {
  const unknown = findings(cover(task(TRAIN, TEST, ['happy', 'joyful'])));
  assert.equal(unknown.issues.length, 1);
  assert.equal(unknown.issues[0].path, 'tasks[0].labels');
  assert.match(
    unknown.issues[0].message,
    /^label of task 't' with words the tokenizer \(tiny\) does not know: 'joyful' is read as "<unk>"/,
  );
  // Two unknown labels are one answer, <unk>: both errors.
  const both = findings(cover(task(TRAIN, TEST, ['zebra', 'yak'])));
  assert.deepEqual(
    both.issues.map((i) => i.message.slice(0, 40)),
    ["labels of task 't' with words the tokeni", "labels 'zebra', 'yak' of task 't' encode"],
  );
  // A lowercasing tokenizer makes 'Spam' and 'spam' one token: single-token labels are told apart by it alone.
  const cased = cover(task(TRAIN, TEST, ['Spam', 'spam', 'ham']), {}, base);
  assert.deepEqual(cased.collisions, [['Spam', 'spam']]);
  const issue = findings(cased).issues[0];
  assert.match(
    issue.message,
    /^labels 'Spam', 'spam' of task 't' encode to the same tokens \(" spam"\), so rank evaluation cannot tell them apart/,
  );
  // Labels of several tokens that share only their first are scored on all of them: no error.
  const shared = cover(task(TRAIN, TEST, ['big cat', 'big dog']));
  assert.deepEqual(shared.collisions, []);
  assert.deepEqual(findings(shared).issues, []);
  // Without rank evaluation there is no label set to score: generation compares text.
  assert.deepEqual(
    findings(cover(task(TRAIN, TEST, ['happy', 'joyful']), { modes: ['generate'] }), ['generate']).issues,
    [],
  );
});

test('label balance: a warning when the most frequent training label has more than 10 times the least', () => {
  const data = (a: number, b: number) => [
    ...Array.from({ length: a }, () => ({ input: 'good', output: 'happy' })),
    ...Array.from({ length: b }, () => ({ input: 'bad', output: 'sad' })),
  ];
  const warned = (a: number, b: number) =>
    findings(cover(task(data(a, b), TEST))).warnings.filter((w) => w.code === 'label-imbalance');
  assert.equal(warned(10, 1).length, 0);
  const w = warned(11, 1);
  assert.equal(w.length, 1);
  assert.match(
    w[0].message,
    /^task 't' \(train\): label 'happy' has 91\.7% of the training examples \(11\) and 'sad' 8\.3% \(1\)/,
  );
});

test('a label the test set uses but no training example has is a warning', () => {
  const c = cover(task(TRAIN, [...TEST, { input: 'cruel dog', output: 'angry' }], ['happy', 'sad', 'angry']));
  const labels = Object.fromEntries(c.labels.map((l) => [l.label, [l.train, l.test]]));
  assert.deepEqual(labels, { happy: [2, 1], sad: [2, 1], angry: [0, 1] });
  const w = findings(c).warnings.filter((x) => x.code === 'label-unseen');
  assert.equal(w.length, 1);
  assert.match(
    w[0].message,
    /^task 't' \(test\): label 'angry' is the answer of 1 test example but of no training example/,
  );
});

test('labels are taught by the examples trained on: the validation split teaches none, a label of no example is warned about', () => {
  // trainLimit kept no 'angry', which only the validation split (held out, never trained on) and the test have.
  const heldOut: Example[] = [{ input: 'cruel dog', output: 'angry' }];
  const limited = cover({
    ...task(TRAIN, [...TEST, { input: 'cruel cat', output: 'angry' }], ['happy', 'sad', 'angry']),
    validation: heldOut,
    trainLimit: 4,
  });
  assert.deepEqual(
    limited.labels.map((l) => [l.label, l.train, l.validation, l.test]),
    [
      ['happy', 2, 0, 1],
      ['sad', 2, 0, 1],
      ['angry', 0, 1, 1],
    ],
  );
  // Tokens and truncation are measured over all the training data, the validation split included.
  assert.equal(limited.train.examples, 5);
  assert.equal(limited.trained, 4);
  const unseen = findings(limited).warnings.filter((w) => w.code === 'label-unseen');
  assert.deepEqual(
    unseen.map((w) => w.message),
    [
      "task 't' (test): label 'angry' is the answer of 1 test example and 1 validation example but of no training example after trainLimit (4), so the model is never taught it. Raise trainLimit, add training examples of it, or leave it out of the labels and the test data",
    ],
  );
  // Only in the validation split: said of the validation split.
  const validationOnly = findings(cover({ ...task(TRAIN, TEST, ['happy', 'sad', 'angry']), validation: heldOut }));
  assert.match(
    validationOnly.warnings.find((w) => w.code === 'label-unseen')!.message,
    /^task 't' \(validation\): label 'angry' is the answer of 1 validation example but of no training example, so/,
  );
  // A label of `labels` that no example of either split has.
  const unused = findings(cover(task(TRAIN, TEST, ['happy', 'sad', 'angry', 'calm'])));
  assert.deepEqual(
    unused.warnings.filter((w) => w.code === 'label-unseen').map((w) => w.message),
    [
      "task 't': labels 'angry', 'calm' of `labels` are the answer of no example, in the training or the test data: the model is never taught them, yet rank evaluation scores every test example against them. Leave them out of `labels`, or add examples of them",
    ],
  );
  // Every label taught: nothing to say.
  assert.deepEqual(
    findings(cover({ ...task(TRAIN, TEST), validation: [{ input: 'good dog', output: 'happy' }] })).warnings.filter(
      (w) => w.code === 'label-unseen',
    ),
    [],
  );
});

test('checkRunInputs: a label trainLimit leaves untaught is a warning, as validate and a run start both say it', () => {
  // tiny/topic has three labels; trainLimit 2 trains on two of them and the validation split holds the third.
  const { config } = resolved({
    tasks: [{ name: 'topic', source: { builtin: 'tiny/topic' }, trainLimit: 2 }],
  });
  const warnings: [string, string][] = [];
  const tasks = loadTasks(config!, 0);
  assert.deepEqual(tasks[0].labels.length, 3);
  checkRunInputs(config!, tasks, checkModelFolder(join(MODELS, 'tiny-llama')).inventory, (m, c) =>
    warnings.push([c, m]),
  );
  assert.deepEqual(
    warnings.map(([c, m]) => `${c} ${m.slice(0, m.indexOf(' is the answer'))}`),
    ["label-unseen task 'topic' (test): label 'food'"],
  );
  assert.match(warnings[0][1], /but of no training example after trainLimit \(2\)/);
});

test('an answer that leaves no room for a prompt, and generation that leaves none, are errors of the setting', () => {
  const long = cover(task([...TRAIN, { input: 'cat', output: 'big bad cat dog owl' }], TEST), { maxSeqLen: 7 });
  const issues = findings(long, ['rank'], 7).issues;
  assert.deepEqual(
    issues.map((i) => i.path),
    ['training.maxSeqLen'],
  );
  assert.match(issues[0].message, /^task 't': the answer "big bad cat dog owl" takes 6 tokens/);
  const gen = findings(cover(task(TRAIN, TEST), { maxSeqLen: 8, maxNewTokens: 8, modes: ['generate'] }), ['generate']);
  assert.deepEqual(
    gen.issues.map((i) => [i.path, i.message]),
    [
      [
        'eval.maxNewTokens',
        'eval.maxNewTokens (8) leaves generation no room for a prompt within training.maxSeqLen (8); make eval.maxNewTokens smaller or training.maxSeqLen larger',
      ],
    ],
  );
});

// ---------------------------------------------------------------------------------------------- run inputs

const work = mkdtempSync(join(tmpdir(), 'sculpt-coverage-'));
after(() => rmSync(work, { recursive: true, force: true }));
let count = 0;

/** A config in a fresh folder, resolved as `sculpt run` resolves it. */
function resolved(overrides: Partial<ExperimentConfig>, setup?: (dir: string) => void) {
  const dir = join(work, `c${count++}`);
  mkdirSync(dir);
  setup?.(dir);
  const raw = tinyExperiment({ output: 'runs', ...overrides });
  const file = writeExperiment(dir, raw);
  const { config, issues } = validateConfig(structuredClone(raw), { file, path, exists: existsSync });
  return { dir, file, config, issues };
}

function inputErrors(config: NonNullable<ReturnType<typeof resolved>['config']>): string {
  const tasks = loadTasks(config, 0);
  const inventory = checkModelFolder(modelDir(config)).inventory;
  try {
    checkRunInputs(config, tasks, inventory, () => {});
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  return '';
}

test('the tokenizer field: resolved against the config file, checked to exist, a folder or its tokenizer.json', () => {
  const copy = (dir: string) => cpSync(join(MODELS, 'tiny-llama'), join(dir, 'tok'), { recursive: true });
  const folder = resolved({ tokenizer: 'tok' }, copy);
  assert.equal(folder.config!.tokenizer, join(folder.dir, 'tok'));
  assert.deepEqual(tokenizerSource(folder.config!), {
    file: join(folder.dir, 'tok', 'tokenizer.json'),
    field: 'tokenizer',
  });
  const file = resolved({ tokenizer: 'tok/tokenizer.json' }, copy);
  assert.deepEqual(tokenizerSource(file.config!), {
    file: join(file.dir, 'tok', 'tokenizer.json'),
    field: 'tokenizer',
  });
  const missing = resolved({ tokenizer: 'nowhere' });
  assert.deepEqual(
    missing.issues.map((i) => i.path),
    ['tokenizer'],
  );
  assert.match(missing.issues[0].message, /tokenizer folder or tokenizer\.json not found: .*nowhere/);
  // A folder without tokenizer.json.
  const empty = resolved({ tokenizer: 'tok' }, (dir) => mkdirSync(join(dir, 'tok')));
  assert.throws(() => tokenizerSource(empty.config!), /tokenizer: tokenizer folder .*tok has no tokenizer\.json/);
  // A FIFO would block the read: refused before it.
  const fifo = resolved({ tokenizer: 'tokenizer.json' }, (dir) =>
    execFileSync('mkfifo', [join(dir, 'tokenizer.json')]),
  );
  assert.throws(() => tokenizerSource(fifo.config!), /tokenizer: .*tokenizer\.json is not a regular file/);
});

test('a checkpoint without tokenizer.json needs the tokenizer field; a tokenizer larger than the model is refused', () => {
  const bare = (dir: string) => {
    cpSync(join(MODELS, 'tiny-llama'), join(dir, 'model'), { recursive: true });
    rmSync(join(dir, 'model', 'tokenizer.json'));
  };
  const without = resolved({ model: 'model' }, bare);
  assert.equal(
    inputErrors(without.config!),
    `model: checkpoint folder ${join(without.dir, 'model')} has no tokenizer.json; give the model's tokenizer with the \`tokenizer\` field (a tokenizer folder or a tokenizer.json file, relative to the config file)`,
  );
  const given = resolved({ model: 'model', tokenizer: join(MODELS, 'tiny-llama') }, bare);
  assert.equal(inputErrors(given.config!), '');
  // sculpt-base's 8,192 tokens for tiny-llama's 68 embedding rows.
  const large = resolved({ tokenizer: join(MODELS, 'sculpt-base', 'tokenizer.json') });
  assert.equal(
    inputErrors(large.config!),
    `tokenizer: the tokenizer ${join(MODELS, 'sculpt-base', 'tokenizer.json')} has 8192 tokens, more than the 68 of the model (vocab_size in ${join(MODELS, 'tiny-llama', 'config.json')}, the rows of its embedding): token ids 68 to 8191 have no embedding. Use the tokenizer the model was trained with`,
  );
});

test('checkRunInputs: every task’s errors in one ConfigError at the task’s config path, warnings with their codes', () => {
  const dir = join(work, 'data');
  mkdirSync(dir);
  const jsonl = (name: string, rows: Example[]) => {
    writeFileSync(join(dir, name), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    return join(dir, name);
  };
  const ok = { train: jsonl('ok.train.jsonl', TRAIN), test: jsonl('ok.test.jsonl', TEST) };
  const bad = {
    train: jsonl('bad.train.jsonl', [
      { input: 'good', output: 'happy' },
      { input: 'bad', output: 'joyful' },
    ]),
    test: jsonl('bad.test.jsonl', [{ input: 'cat', output: 'happy' }]),
  };
  const { config } = resolved({
    tasks: [
      { name: 'fine', source: ok },
      { name: 'broken', source: bad },
    ],
  });
  const warnings: [string, string][] = [];
  assert.throws(
    () =>
      checkRunInputs(config!, loadTasks(config!, 0), checkModelFolder(join(MODELS, 'tiny-llama')).inventory, (m, c) =>
        warnings.push([c, m]),
      ),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.issues.length === 1 &&
      e.issues[0].path === 'tasks[1].labels' &&
      /'joyful' is read as "<unk>"/.test(e.issues[0].message) &&
      /builtin:tiny-llama, 68 tokens/.test(e.issues[0].message),
  );
  assert.deepEqual(
    warnings.map(([c, m]) => `${c} ${m.slice(0, 19)}`),
    // The validation split holds out one of 'broken''s two training examples: the other label is never taught.
    ["unknown-tokens task 'fine' (train)", "label-unseen task 'broken' (test"],
  );
});
