/**
 * The peers bench over several seeds: a method is judged on its mean accuracy right after training each task,
 * with the t interval beside it and the runs below the bar counted, not on whichever single run fell short.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { summarizeSeeds, type PeerResult, type PeerTask } from '../../scripts/bench/peers';

const TASKS: PeerTask[] = [
  { name: 'sentiment', labels: 2, chance: 50, bar: 75 },
  { name: 'genre', labels: 5, chance: 20, bar: 45 },
];

function run(method: string, seed: number, diagonal: (number | null)[], status = 'finished', AA = 60): PeerResult {
  const learned = diagonal.map((v, j) => v != null && v >= TASKS[j].bar);
  return {
    method,
    seed,
    options: { method },
    status,
    diagonal,
    validationDiagonal: null,
    learned,
    allLearned: status === 'finished' && learned.every(Boolean),
    AA: status === 'finished' ? AA : null,
    BWT: status === 'finished' ? -10 : null,
    seconds: 100,
    error: null,
  };
}

test('a run one point short does not fail a method whose mean clears the bar; the run is counted', () => {
  const [m] = summarizeSeeds([run('mtl', 0, [74, 60]), run('mtl', 1, [78, 62]), run('mtl', 2, [79, 58])], TASKS);
  assert.equal(m.method, 'mtl');
  assert.deepEqual(m.seeds, [0, 1, 2]);
  assert.deepEqual(m.tasks[0].values, [74, 78, 79]);
  assert.ok(Math.abs(m.tasks[0].mean! - 77) < 1e-12);
  assert.equal(m.tasks[0].runsBelow, 1);
  assert.equal(m.tasks[0].learned, true);
  // t(0.975, 2) = 4.303, sd of [74, 78, 79] = sqrt(7): half-width 4.303 · sqrt(7) / sqrt(3) = 6.57.
  const [lo, hi] = m.tasks[0].ci95!;
  assert.ok(Math.abs(hi - lo - 2 * 6.573) < 0.01, `interval ${lo}-${hi}`);
  assert.equal(m.allLearned, true);
  assert.ok(Math.abs(m.AA.mean! - 60) < 1e-12);
});

test('a mean below the bar fails the task however many runs cleared it', () => {
  const [m] = summarizeSeeds(
    [run('o-lora', 0, [75, 50]), run('o-lora', 1, [70, 50]), run('o-lora', 2, [75, 50])],
    TASKS,
  );
  assert.ok(Math.abs(m.tasks[0].mean! - 73.333) < 1e-3);
  assert.equal(m.tasks[0].runsBelow, 1);
  assert.equal(m.tasks[0].learned, false);
  assert.equal(m.tasks[1].learned, true);
  assert.equal(m.allLearned, false);
});

test('a run that stopped short of a task leaves that task, and the method, not learned', () => {
  const [m] = summarizeSeeds(
    [run('ewc', 0, [80, 60]), run('ewc', 1, [80, null], 'failed'), run('ewc', 2, [80, 60])],
    TASKS,
  );
  assert.deepEqual(m.tasks[1].values, [60, 60]);
  assert.equal(m.tasks[1].runsBelow, 1);
  assert.equal(m.tasks[1].learned, false);
  assert.equal(m.tasks[0].learned, true);
  assert.equal(m.allLearned, false, 'a failed run fails its method');
  assert.equal(m.AA.mean, 60, 'the metrics of the finished runs only');
});

test('methods keep the order they first appear in, each with its own runs', () => {
  const out = summarizeSeeds(
    [run('seqft', 0, [80, 50]), run('lwf', 0, [76, 46]), run('seqft', 1, [82, 52]), run('lwf', 1, [70, 44])],
    TASKS,
  );
  assert.deepEqual(
    out.map((m) => [m.method, m.seeds, m.allLearned]),
    [
      ['seqft', [0, 1], true],
      ['lwf', [0, 1], false],
    ],
  );
  assert.equal(out[1].tasks[0].mean, 73);
  assert.equal(out[1].tasks[1].mean, 45, 'exactly at the bar counts as learned');
  assert.equal(out[1].tasks[1].learned, true);
});
