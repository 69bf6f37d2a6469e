/**
 * How well a tokenizer and `training.maxSeqLen` fit a task's data, measured before a run: users bring their own
 * JSON Lines tasks, and a word-level tokenizer (the shipped base model had one of 8,192 words until it moved to
 * byte-level BPE) reads much real text as `<unk>`, which trains and evaluates without complaint while the model
 * sees little of the text; a checkpoint's own tokenizer may do the same. Examples are
 * encoded with the codec training and evaluation use (./codec.ts), so what is counted here is what the run
 * will feed the model. `sculpt validate` and the start of every run report these numbers through one function
 * (../run-inputs.ts), so that validate makes every check a run makes.
 *
 * Per task and split (train: the training data the run draws from, its validation split included; test):
 *
 * - unknown tokens: tokens of the examples' own text (instruction and input; the template is the config's and
 *   is left out) equal to the tokenizer's unknown token, as a share of all of them, and the inputs that are
 *   unknown in every token. Warning `unknown-tokens` when the share is above UNKNOWN_SHARE_WARN (15%) or any
 *   input is entirely unknown: such an input tells the model nothing. (The shipped base model's byte-level BPE has
 *   no unknown token, so nothing is unknown on it; a word-level vocabulary of 8,192 words left 5-12% of the
 *   shipped English benchmarks unknown, 42% of CL-15's language task, and user text often more.)
 * - truncation: prompts longer than what `maxSeqLen` leaves them (the answer after them included), which lose
 *   their beginning. Training examples are cut as training cuts them; test prompts as rank evaluation (room for
 *   the longest label) and generation (room for `eval.maxNewTokens`) cut them. Warning `truncated-inputs` when
 *   more than TRUNCATED_SHARE_WARN (5%) of a split's prompts are cut: a few long outliers are expected and
 *   harmless (the end of the prompt, with its answer cue, is kept), a larger share means the task is mostly
 *   read in part.
 * - label balance (train): warning `label-imbalance` when the most frequent label has more than
 *   IMBALANCE_RATIO_WARN (10) times the training examples of the least frequent one; a model can then score
 *   well by always answering the majority label. Warning `label-unseen` for a label of the set that no example
 *   trained on has, so the model is never taught it: one that test or validation examples use (with `labels`
 *   given, or when `trainLimit` leaves a label only in the validation split, which teaches nothing), or a
 *   `labels` entry that no example of either split uses. Label counts are of the examples trained on; the
 *   validation split is measured with the training data for tokens and truncation only.
 *
 * Errors, with rank evaluation on (the label set is what it scores), since they make a task unlearnable or
 * unscorable:
 * - a label with an unknown token: the label's text is lost to the model, which is taught (and scored on) the
 *   `<unk>` every unknown input word also maps to;
 * - labels whose answers encode to the same tokens (differing only in case under a lowercasing tokenizer, or
 *   in words the tokenizer does not know): rank evaluation scores them alike and training teaches one answer
 *   for both. Single-token labels, which rank evaluation tells apart by the first answer token alone, collide
 *   exactly when that token is the same; labels of several tokens sharing only a first token are scored on
 *   all their tokens and stay distinguishable, so they are no error;
 * - (in any mode) an expected output whose answer leaves no room for a prompt within `maxSeqLen`, which would
 *   otherwise stop training at the first batch that holds it, and (generation) an `eval.maxNewTokens` that
 *   leaves the prompts no room, which would stop the first evaluation.
 *
 * Train/test overlap is reported by the task loader (experiment.ts, `data-overlap`), not here.
 */
import type { Example } from '../../data/examples';
import type { ConfigIssue } from '../../protocol/config-validate';
import { answerText, type TextTokenizer } from './batches';
import { codecOfKind } from './codec';

/** Unknown tokens above this share of a split's input tokens are a warning. */
export const UNKNOWN_SHARE_WARN = 0.15;
/** Truncated prompts above this share of a split's examples are a warning. */
export const TRUNCATED_SHARE_WARN = 0.05;
/** The most frequent training label over the least frequent one above this ratio is a warning. */
export const IMBALANCE_RATIO_WARN = 10;

export type SplitName = 'train' | 'test';

export interface SplitCoverage {
  examples: number;
  /** Tokens of the examples' instruction and input (not the template). */
  inputTokens: number;
  unknownTokens: number;
  /** Inputs with at least one token, every one of them unknown. */
  unknownInputs: number;
  /** Examples whose prompt is cut (from the left) to fit `maxSeqLen`. */
  truncated: number;
  /** Tokens of the longest prompt before any cut (the template included). */
  longestPrompt: number;
}

export interface LabelCoverage {
  label: string;
  /** The answer's tokens, as training and rank evaluation encode it (without EOS). */
  ids: number[];
  /** Its tokens as text, for messages. */
  pieces: string[];
  unknown: boolean;
  /** Training examples with this answer: those that teach it (the validation split's are not among them). */
  train: number;
  validation: number;
  test: number;
}

export interface TaskCoverage {
  task: string;
  train: SplitCoverage;
  test: SplitCoverage;
  /** The task's label set, each encoded and counted. */
  labels: LabelCoverage[];
  /** Groups of two or more labels whose answers encode to the same tokens. */
  collisions: string[][];
  /** Expected outputs whose answer leaves no room for a prompt within maxSeqLen, with the problem. */
  tooLong: { output: string; problem: string }[];
  /** Why generation cannot evaluate the task: `eval.maxNewTokens` leaves its prompts no room. */
  evalProblem?: string;
  /** The examples trained on (`train` below counts the validation split too, as data the run reads). */
  trained: number;
  /** The task's `trainLimit`, when it has one. */
  trainLimit?: number;
}

/** What a task brings to the checks: RunTask (experiment.ts) has these fields. */
export interface CoverageTask {
  name: string;
  /** The examples the run trains on (the validation split held out, `trainLimit` applied). */
  train: Example[];
  /** The validation split: measured as training data (it is drawn from it), but it teaches no label. */
  validation?: Example[];
  test: Example[];
  labels: string[];
  template: string;
  /** The task's `trainLimit`, for messages about what it left out. */
  trainLimit?: number;
}

export interface CoverageOptions {
  /** How the model takes examples: one sequence (decoder-only) or prompt and answer apart (encoder-decoder). */
  kind: 'causal' | 'seq2seq';
  maxSeqLen: number;
  /** The tokenizer's unknown token (unknownTokenId), or null when it has none (byte-level BPE). */
  unkId: number | null;
  /** Evaluation modes: which test prompts to measure, and whether the label set is scored (rank). */
  modes: readonly ('rank' | 'generate')[];
  maxNewTokens: number;
}

/**
 * A tokenizer that remembers encodings: the checks encode each prompt under several limits and each text in
 * several roles. Callers mutate what `encode` returns (the codec appends EOS), so each call gets a copy.
 */
function memoized(tok: TextTokenizer): TextTokenizer {
  const cache = new Map<string, number[]>();
  return {
    encode(text: string): number[] {
      let ids = cache.get(text);
      if (!ids) cache.set(text, (ids = tok.encode(text)));
      return [...ids];
    },
    decode: (ids) => tok.decode(ids),
    bosId: tok.bosId,
    eosId: tok.eosId,
    padId: tok.padId,
  };
}

/**
 * The prompt room rank evaluation leaves (evaluate.ts, rankInputs): one token when every label is a single
 * token (labels are ranked by the next token), else the longest label's answer with EOS.
 */
function rankRoom(labels: LabelCoverage[], eosId: number | null): number {
  if (labels.every((l) => l.ids.length === 1)) return 1;
  return Math.max(...labels.map((l) => l.ids.length + (eosId != null ? 1 : 0)));
}

export function taskCoverage(tokenizer: TextTokenizer, task: CoverageTask, opts: CoverageOptions): TaskCoverage {
  const tok = memoized(tokenizer);
  const codec = codecOfKind(opts.kind, tok, opts.maxSeqLen);
  // The same encoding without a length limit: a prompt is cut when the limited one is shorter.
  const whole = codecOfKind(opts.kind, tok, Number.MAX_SAFE_INTEGER);

  const count = (examples: Example[]) => {
    const n = new Map<string, number>();
    for (const e of examples) n.set(e.output, (n.get(e.output) ?? 0) + 1);
    return n;
  };
  const validation = task.validation ?? [];
  const [inTrain, inValidation, inTest] = [count(task.train), count(validation), count(task.test)];
  const labels: LabelCoverage[] = task.labels.map((label) => {
    const ids = tok.encode(answerText(label));
    return {
      label,
      ids,
      pieces: ids.map((id) => tok.decode([id])),
      unknown: opts.unkId !== null && ids.includes(opts.unkId),
      train: inTrain.get(label) ?? 0,
      validation: inValidation.get(label) ?? 0,
      test: inTest.get(label) ?? 0,
    };
  });
  const byTokens = new Map<string, string[]>();
  for (const l of labels) {
    const key = l.ids.join(',');
    byTokens.set(key, [...(byTokens.get(key) ?? []), l.label]);
  }
  const collisions = [...byTokens.values()].filter((g) => g.length > 1);

  // Every expected output is encoded as an answer in training (and the label set in evaluation).
  const tooLong: TaskCoverage['tooLong'] = [];
  for (const output of new Set([...inTrain.keys(), ...inValidation.keys(), ...inTest.keys(), ...task.labels])) {
    try {
      codec.example({ input: '', output }, '');
    } catch (e) {
      tooLong.push({ output, problem: (e as Error).message });
    }
  }
  const cannotFit = new Set(tooLong.map((t) => t.output));

  // The room each evaluation mode leaves after a test prompt; a mode that leaves the prompt none is a problem.
  const rooms: number[] = [];
  if (opts.modes.includes('rank') && labels.length && !labels.some((l) => cannotFit.has(l.label)))
    rooms.push(rankRoom(labels, tok.eosId));
  let evalProblem: string | undefined;
  if (opts.modes.includes('generate')) {
    try {
      codec.prompt({ input: '', output: '' }, '', opts.maxNewTokens);
      rooms.push(opts.maxNewTokens);
    } catch {
      evalProblem = `eval.maxNewTokens (${opts.maxNewTokens}) leaves generation no room for a prompt within training.maxSeqLen (${opts.maxSeqLen})`;
    }
  }

  const measure = (examples: Example[], split: SplitName): SplitCoverage => {
    const c: SplitCoverage = {
      examples: examples.length,
      inputTokens: 0,
      unknownTokens: 0,
      unknownInputs: 0,
      truncated: 0,
      longestPrompt: 0,
    };
    for (const e of examples) {
      const ids = [...(e.instruction ? tok.encode(e.instruction) : []), ...tok.encode(e.input)];
      const unknown = opts.unkId === null ? 0 : ids.filter((id) => id === opts.unkId).length;
      c.inputTokens += ids.length;
      c.unknownTokens += unknown;
      if (ids.length > 0 && unknown === ids.length) c.unknownInputs++;
      const full = whole.prompt(e, task.template, 0).length;
      c.longestPrompt = Math.max(c.longestPrompt, full);
      const cut =
        split === 'train'
          ? !cannotFit.has(e.output) && codec.example(e, task.template).prompt.length < full
          : rooms.some((room) => codec.prompt(e, task.template, room).length < full);
      if (cut) c.truncated++;
    }
    return c;
  };
  return {
    task: task.name,
    train: measure([...task.train, ...validation], 'train'),
    test: measure(task.test, 'test'),
    trained: task.train.length,
    labels,
    collisions,
    tooLong,
    ...(evalProblem ? { evalProblem } : {}),
    ...(task.trainLimit !== undefined ? { trainLimit: task.trainLimit } : {}),
  };
}

export interface CoverageWarning {
  code: 'unknown-tokens' | 'truncated-inputs' | 'label-imbalance' | 'label-unseen';
  message: string;
}

export interface CoverageFindings {
  /** What makes the task unlearnable or unscorable: the run must not start. */
  issues: ConfigIssue[];
  warnings: CoverageWarning[];
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const quote = (s: string) => `'${s.length > 40 ? `${s.slice(0, 40)}…` : s}'`;
const list = (xs: string[]) => xs.map(quote).join(', ');
/** The label's tokens as text, each quoted: byte-level pieces carry their leading space (" spam"). */
const tokens = (l: LabelCoverage) =>
  l.pieces.length ? l.pieces.map((p) => JSON.stringify(p)).join(' ') : '(no tokens)';
/** "1 input", "3 inputs" */
const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
/** "1 of 4 inputs is", "2 of 4 inputs are" */
const share = (k: number, n: number, what: string) => `${k} of ${count(n, what)} ${k === 1 ? 'is' : 'are'}`;

/**
 * The errors and warnings of a task's coverage, by the thresholds above. `at` is the task's JSON path
 * (`tasks[2]`), `settings` what a message may name: `maxSeqLen` and the tokenizer's size and file.
 */
export function coverageFindings(
  c: TaskCoverage,
  at: string,
  settings: { maxSeqLen: number; tokenizer: string; modes: readonly ('rank' | 'generate')[]; maxNewTokens?: number },
): CoverageFindings {
  const issues: ConfigIssue[] = [];
  const warnings: CoverageWarning[] = [];
  const task = `task '${c.task}'`;
  if (c.evalProblem) {
    issues.push({
      path: 'eval.maxNewTokens',
      message: `${c.evalProblem}; make eval.maxNewTokens smaller or training.maxSeqLen larger`,
      expected: 'room for a prompt before the generated tokens',
    });
  }
  for (const t of c.tooLong) {
    issues.push({
      path: 'training.maxSeqLen',
      message: `${task}: ${t.problem}; raise training.maxSeqLen or shorten the output`,
      expected: 'room for a prompt before every answer',
      actual: settings.maxSeqLen,
    });
  }
  if (settings.modes.includes('rank')) {
    const unknown = c.labels.filter((l) => l.unknown);
    if (unknown.length) {
      issues.push({
        path: `${at}.labels`,
        message: `${unknown.length === 1 ? 'label' : 'labels'} of ${task} with words the tokenizer (${settings.tokenizer}) does not know: ${unknown.map((l) => `${quote(l.label)} is read as ${tokens(l)}`).join(', ')}; the model cannot learn or score a label it reads as <unk> (every unknown word of the inputs is <unk> too). Use labels made of words the tokenizer knows, or a tokenizer that knows these (the \`tokenizer\` field)`,
        expected: 'labels without unknown tokens',
        actual: unknown.map((l) => l.label),
      });
    }
    for (const group of c.collisions) {
      const l = c.labels.find((x) => x.label === group[0])!;
      issues.push({
        path: `${at}.labels`,
        message: `labels ${list(group)} of ${task} encode to the same tokens (${tokens(l)}), so rank evaluation cannot tell them apart and training teaches one answer for both. Make the labels differ in words the tokenizer (${settings.tokenizer}) keeps apart (a lowercasing tokenizer ignores case)`,
        expected: 'labels that encode differently',
        actual: group,
      });
    }
  }

  for (const split of ['train', 'test'] as const) {
    const s = c[split];
    const where = `${task} (${split})`;
    const unknown = s.inputTokens ? s.unknownTokens / s.inputTokens : 0;
    if (unknown > UNKNOWN_SHARE_WARN || s.unknownInputs > 0) {
      const whole = s.unknownInputs
        ? `; ${share(s.unknownInputs, s.examples, 'input')} unknown in every token and tells the model nothing`
        : '';
      warnings.push({
        code: 'unknown-tokens',
        message: `${where}: ${pct(unknown)} of the input tokens (${s.unknownTokens} of ${s.inputTokens}) are unknown to the tokenizer (${settings.tokenizer}) and read as <unk>${whole}. Use a tokenizer that covers the data's words (the \`tokenizer\` field, or a model that has one)`,
      });
    }
    if (s.truncated > TRUNCATED_SHARE_WARN * s.examples) {
      // Generation keeps eval.maxNewTokens of the window for its output: a test prompt shorter than maxSeqLen
      // is still cut when it does not leave that room.
      const generating = split === 'test' && settings.modes.includes('generate') && settings.maxNewTokens;
      const room = generating
        ? `; generation keeps eval.maxNewTokens (${settings.maxNewTokens}) of them for its output`
        : '';
      const fix = generating
        ? 'Raise training.maxSeqLen, lower eval.maxNewTokens or shorten the inputs'
        : 'Raise training.maxSeqLen or shorten the inputs';
      warnings.push({
        code: 'truncated-inputs',
        message: `${where}: ${share(s.truncated, s.examples, 'prompt')} too long for training.maxSeqLen (${settings.maxSeqLen} tokens with the answer${room}), so ${pct(s.truncated / s.examples)} of the prompts lose their beginning; the longest has ${s.longestPrompt} tokens. ${fix}`,
      });
    }
  }

  const taught = c.labels.filter((l) => l.train > 0).sort((a, b) => b.train - a.train);
  const total = c.trained;
  if (taught.length >= 2 && total > 0) {
    const [most, least] = [taught[0], taught[taught.length - 1]];
    if (most.train > IMBALANCE_RATIO_WARN * least.train) {
      warnings.push({
        code: 'label-imbalance',
        message: `${task} (train): label ${quote(most.label)} has ${pct(most.train / total)} of the training examples (${most.train}) and ${quote(least.label)} ${pct(least.train / total)} (${least.train}), more than ${IMBALANCE_RATIO_WARN} times fewer; a model can score well by always answering ${quote(most.label)}. Balance the training data (trainLimit draws evenly over the labels)`,
      });
    }
  }
  // A label no training example has is never taught, though rank evaluation scores every test example
  // against it: one the test or validation data asks for is a sure miss, one no example has only takes answers.
  const limit = c.trainLimit !== undefined ? ` after trainLimit (${c.trainLimit})` : '';
  const unseen = c.labels.filter((l) => l.train === 0 && l.test + l.validation > 0);
  if (unseen.length) {
    const one = unseen.length === 1;
    const tested = unseen.reduce((n, l) => n + l.test, 0);
    const validated = unseen.reduce((n, l) => n + l.validation, 0);
    const asked = [
      ...(tested ? [count(tested, 'test example')] : []),
      ...(validated ? [count(validated, 'validation example')] : []),
    ].join(' and ');
    const fix = c.trainLimit !== undefined ? 'Raise trainLimit, add training examples of' : 'Add training examples of';
    warnings.push({
      code: 'label-unseen',
      message: `${task} (${tested ? 'test' : 'validation'}): ${one ? 'label' : 'labels'} ${list(unseen.map((l) => l.label))} ${one ? 'is' : 'are'} the answer of ${asked} but of no training example${limit}, so the model is never taught ${one ? 'it' : 'them'}. ${fix} ${one ? 'it' : 'them'}, or leave ${one ? 'it' : 'them'} out of the labels and the test data`,
    });
  }
  const unused = c.labels.filter((l) => l.train + l.validation + l.test === 0);
  if (unused.length) {
    const one = unused.length === 1;
    warnings.push({
      code: 'label-unseen',
      message: `${task}: ${one ? 'label' : 'labels'} ${list(unused.map((l) => l.label))} of \`labels\` ${one ? 'is' : 'are'} the answer of no example, in the training or the test data${limit}: the model is never taught ${one ? 'it' : 'them'}, yet rank evaluation scores every test example against ${one ? 'it' : 'them'}. Leave ${one ? 'it' : 'them'} out of \`labels\`, or add examples of ${one ? 'it' : 'them'}`,
    });
  }
  return { issues, warnings };
}
