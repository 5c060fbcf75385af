/**
 * Consistent hashing of partitions onto owners (virtual nodes inside a member).
 * Each owner places VNODE_POINTS points on a 32-bit ring (fixed-seed hash of "owner#point");
 * partition p goes to the owner of the first point clockwise from hash("p:" + p).
 * Bounded load (Mirrokni et al.): no owner takes more than ceil(load * P / N) partitions; a
 * partition whose first owner is full walks on clockwise. Adding or removing one owner moves
 * about 1/N of the partitions.
 */
import { HASH_SEED, murmur3 } from './hash.js';

const VNODE_POINTS = 64;
const enc = new TextEncoder();
const h = (s: string): number => {
  const b = enc.encode(s);
  return murmur3(b, b.length, HASH_SEED);
};

/** Index of the first ring point whose hash is >= h (points sorted by hash); points.length if none. */
export function firstPointAtOrAfter(points: ReadonlyArray<readonly [number, unknown]>, h: number): number {
  let lo = 0;
  let hi = points.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function assignPartitions(partitions: number, owners: readonly number[], loadFactor = 1.25): Int32Array {
  const out = new Int32Array(partitions).fill(-1);
  if (owners.length === 0) return out;
  const points: Array<[number, number]> = [];
  for (const o of owners) for (let v = 0; v < VNODE_POINTS; v++) points.push([h(`${o}#${v}`), o]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const cap = Math.ceil((loadFactor * partitions) / owners.length);
  const load = new Map<number, number>(owners.map((o) => [o, 0]));
  for (let p = 0; p < partitions; p++) {
    const ph = h(`p:${p}`);
    const lo = firstPointAtOrAfter(points, ph);
    for (let step = 0; step < points.length; step++) {
      const owner = points[(lo + step) % points.length][1];
      if ((load.get(owner) ?? 0) < cap) {
        out[p] = owner;
        load.set(owner, (load.get(owner) ?? 0) + 1);
        break;
      }
    }
  }
  return out;
}
