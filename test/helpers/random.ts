// Seeded draws for the table-driven fuzz tests: the project's own generator (src/data/rng.ts) as a function, so a
// failing case replays from its seed and index.
import { Rng as Generator } from '../../src/data/rng';

/** Uniform draws in [0, 1). */
export type Rng = () => number;

export function seeded(seed: number): Rng {
  const g = new Generator(seed);
  return () => g.next();
}

export const int = (rng: Rng, n: number): number => Math.floor(rng() * n);
export const pick = <T>(rng: Rng, items: readonly T[]): T => items[int(rng, items.length)];
