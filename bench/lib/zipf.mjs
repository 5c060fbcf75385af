// Deterministic workload helpers: a seeded PRNG and a Zipf(s) sampler over n keys.
// The sampler precomputes the CDF once (n doubles), then draws by binary search; benchmarks draw
// a whole index array up front so the timed loop only reads `idx[i & mask]`.

/** mulberry32: a small, fast, seeded 32-bit PRNG. Returns floats in [0, 1). */
export function rng(seed = 1) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A sampler of ranks 0..n-1 with P(rank k) ∝ 1 / (k+1)^s. Rank 0 is the hottest key. */
export function zipfSampler(n, s = 0.99, seed = 1) {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let k = 0; k < n; k++) {
    sum += 1 / Math.pow(k + 1, s);
    cdf[k] = sum;
  }
  for (let k = 0; k < n; k++) cdf[k] /= sum;
  const rand = rng(seed);
  return () => {
    const u = rand();
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/**
 * `count` (a power of two) Zipf-distributed key indices in 0..n-1. Ranks are scattered over the
 * key space with a fixed permutation, so hot keys are not all neighbours (and not all in one
 * partition by accident of naming).
 */
export function zipfIndices(n, count, { s = 0.99, seed = 1 } = {}) {
  if ((count & (count - 1)) !== 0) throw new Error('count must be a power of two');
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  const rand = rng(seed ^ 0x9e3779b9);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
  const draw = zipfSampler(n, s, seed);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = perm[draw()];
  return out;
}

/** `count` (a power of two) flags, 1 with probability `p` (e.g. the writes of a 90/10 mix). */
export function flags(count, p, seed = 7) {
  const rand = rng(seed);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = rand() < p ? 1 : 0;
  return out;
}
