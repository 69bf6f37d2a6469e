/**
 * What a set of per-example predictions says beyond its accuracy: the confusion matrix (which label is taken for
 * which), the misclassified examples with the labels the model preferred, and the most frequent confusions for
 * reports. Pure functions over records (src/protocol/predictions.ts), shared by the dashboard host and reports.
 */
import type {
  ConfusionMatrix,
  LabelScore,
  MisclassifiedRow,
  PredictionRecord,
  PredictionSetInfo,
  PredictionsView,
} from '../protocol/predictions';

/** Beyond this many labels a confusion matrix is not drawn (free-text generation tasks): only the list is. */
export const MAX_CONFUSION_LABELS = 50;
/** Misclassified examples sent to a viewer at most; the total is sent beside them. */
export const MAX_MISCLASSIFIED = 500;
/** The column header of predictions that are no label. */
export const OTHER_LABEL = '(other)';

/**
 * Rows are expected labels, columns predicted ones, both `labels` in order, then any expected output that is not
 * in `labels` (a generation task's label set comes from the training data). A correct record counts on the
 * diagonal, so the diagonal sums to the accuracy's count; a prediction that is no label counts in `other`.
 */
export function confusionMatrix(records: readonly PredictionRecord[], labels: readonly string[]): ConfusionMatrix {
  const all = [...labels];
  const index = new Map(all.map((l, i) => [l, i]));
  for (const r of records) {
    if (!index.has(r.expected)) {
      index.set(r.expected, all.length);
      all.push(r.expected);
    }
  }
  const counts = all.map(() => all.map(() => 0));
  const other = all.map(() => 0);
  let correct = 0;
  for (const r of records) {
    const i = index.get(r.expected)!;
    const j = r.correct ? i : index.get(r.predicted);
    if (r.correct) correct++;
    if (j === undefined) other[i]++;
    else counts[i][j]++;
  }
  return { labels: all, counts, other: other.some((n) => n > 0) ? other : null, total: records.length, correct };
}

/** The labels with the highest scores, best first, each with its share of the probability over the labels. */
export function topScores(scores: PredictionRecord['scores'], k = 3): LabelScore[] {
  if (!scores) return [];
  const finite = Object.entries(scores).filter((e): e is [string, number] => Number.isFinite(e[1]));
  if (!finite.length) return [];
  const max = Math.max(...finite.map(([, v]) => v));
  const z = finite.reduce((s, [, v]) => s + Math.exp(v - max), 0);
  return finite
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .map(([label, logprob]) => ({ label, logprob, share: Math.exp(logprob - max) / z }));
}

/** The first `limit` misclassified records as rows, in split order, and how many there are in all. */
export function misclassifiedRows(
  records: readonly PredictionRecord[],
  limit = MAX_MISCLASSIFIED,
): { rows: MisclassifiedRow[]; total: number } {
  const wrong = records.filter((r) => !r.correct);
  return {
    rows: wrong.slice(0, limit).map((r) => ({
      index: r.index,
      input: r.input,
      ...(r.inputTruncated ? { inputTruncated: true } : {}),
      expected: r.expected,
      predicted: r.predicted,
      top: topScores(r.scores),
    })),
    total: wrong.length,
  };
}

/** A set as the dashboard shows it. */
export function predictionsView(
  set: PredictionSetInfo,
  records: readonly PredictionRecord[],
  badLines = 0,
  opts: { limit?: number; maxLabels?: number } = {},
): PredictionsView {
  const maxLabels = opts.maxLabels ?? MAX_CONFUSION_LABELS;
  const m = confusionMatrix(records, set.labels);
  const wrong = misclassifiedRows(records, opts.limit);
  const tooMany = m.labels.length > maxLabels;
  return {
    set,
    confusion: tooMany ? null : m,
    ...(tooMany
      ? {
          confusionNote: `${m.labels.length} distinct labels: too many for a confusion matrix (at most ${maxLabels}); the misclassified examples are listed below.`,
        }
      : {}),
    misclassified: wrong.rows,
    misclassifiedTotal: wrong.total,
    badLines,
  };
}

export interface Confusion {
  expected: string;
  predicted: string;
  count: number;
}

/** The off-diagonal cells (and `other`), most frequent first; ties in label order. */
export function frequentConfusions(m: ConfusionMatrix, k = 3): Confusion[] {
  const out: Confusion[] = [];
  m.labels.forEach((expected, i) => {
    m.labels.forEach((predicted, j) => {
      if (i !== j && m.counts[i][j] > 0) out.push({ expected, predicted, count: m.counts[i][j] });
    });
    if (m.other?.[i]) out.push({ expected, predicted: OTHER_LABEL, count: m.other[i] });
  });
  // Array.prototype.sort is stable: equal counts keep row-major label order.
  return out.sort((a, b) => b.count - a.count).slice(0, k);
}
