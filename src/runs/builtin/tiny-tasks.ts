/**
 * Tiny synthetic tasks for tests and the first-run example: bag-of-words classification over small word
 * lists, learnable in a few dozen steps by a tiny model, with label sets that differ between tasks so that
 * sequential training shows forgetting. Generated from a fixed seed per task: the same data everywhere.
 */
import type { Example, TaskSplit } from '../../data/examples';
import { Rng, hashString } from '../../data/rng';

interface TinySpec {
  classes: Record<string, string[]>;
  words: number;
  train: number;
  test: number;
}

const SPECS: Record<string, TinySpec> = {
  'tiny/sentiment': {
    classes: {
      good: ['sunny', 'happy', 'great', 'lovely', 'bright', 'sweet', 'kind', 'calm'],
      bad: ['rainy', 'sad', 'awful', 'gloomy', 'dark', 'bitter', 'cruel', 'angry'],
    },
    words: 4,
    train: 96,
    test: 48,
  },
  'tiny/topic': {
    classes: {
      animal: ['cat', 'dog', 'fox', 'owl', 'bee', 'cow', 'pig', 'hen'],
      food: ['bread', 'rice', 'soup', 'cake', 'plum', 'pear', 'corn', 'bean'],
      place: ['city', 'farm', 'lake', 'hill', 'park', 'town', 'road', 'shop'],
    },
    words: 4,
    train: 96,
    test: 48,
  },
  'tiny/size': {
    classes: {
      big: ['huge', 'giant', 'vast', 'tall', 'wide', 'broad', 'grand', 'large'],
      small: ['tiny', 'little', 'small', 'short', 'narrow', 'slim', 'minor', 'petite'],
    },
    words: 4,
    train: 96,
    test: 48,
  },
};

export const TINY_TASK_IDS = Object.keys(SPECS);

/** Every word the tiny tasks use (inputs, labels and the default template), for the tiny model's vocabulary. */
export function tinyVocabulary(): string[] {
  const words = new Set<string>(['Answer:']);
  for (const spec of Object.values(SPECS)) {
    for (const [label, ws] of Object.entries(spec.classes)) {
      words.add(label);
      ws.forEach((w) => words.add(w));
    }
  }
  return [...words];
}

export function tinyTask(id: string): TaskSplit | undefined {
  const spec = SPECS[id];
  if (!spec) return undefined;
  const rng = new Rng(hashString(id));
  const labels = Object.keys(spec.classes);
  const make = (n: number): Example[] =>
    Array.from({ length: n }, (_, i) => {
      const label = labels[i % labels.length];
      const pool = spec.classes[label];
      const input = Array.from({ length: spec.words }, () => pool[rng.int(pool.length)]).join(' ');
      return { input, output: label };
    });
  return { train: rng.shuffle(make(spec.train)), test: make(spec.test) };
}
