/**
 * Randomness is an input of the protocol machines (initial ECP sequences, jitter), never read
 * from a global: the simulator passes a seeded generator so that a seed reproduces a run.
 */
export type Random = () => number;

/** Small fast seeded PRNG (mulberry32): deterministic across platforms. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform integer in [min, max]. */
export function randomInt(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}
