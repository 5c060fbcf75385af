import { describe, expect, it } from 'vitest';
import { HASH_SEED, hashKey, murmur3, partitionOf } from '../../src/ring/hash.js';
import { assignPartitions } from '../../src/ring/ring.js';

describe('fixed-seed hash', () => {
  it('matches MurmurHash3 x86_32 reference vectors', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    // reference values of MurmurHash3_x86_32 (Appleby's smhasher)
    expect(murmur3(enc(''), 0, 0)).toBe(0);
    expect(murmur3(enc(''), 0, 1)).toBe(0x514e28b7);
    expect(murmur3(enc('Hello, world!'), 13, 1234)).toBe(0xfaf6cdb3);
    expect(murmur3(enc('The quick brown fox jumps over the lazy dog'), 43, 0x9747b28c)).toBe(0x2fa826cd);
  });

  it('partitions a key the same way on every call and spreads keys evenly', () => {
    expect(partitionOf(hashKey('user:1'), 271)).toBe(partitionOf(murmur3(new TextEncoder().encode('user:1'), 6, HASH_SEED), 271));
    const counts = new Array(271).fill(0);
    for (let i = 0; i < 271_000; i++) counts[partitionOf(hashKey(`k${i}`), 271)]++;
    expect(Math.min(...counts)).toBeGreaterThan(800);
    expect(Math.max(...counts)).toBeLessThan(1200);
  });
});

describe('consistent hashing of partitions onto owners', () => {
  it('assigns every partition, within the load bound', () => {
    const t = assignPartitions(271, [0, 1, 2, 3]);
    const load = [0, 0, 0, 0];
    for (const o of t) load[o]++;
    expect(load.reduce((a, b) => a + b)).toBe(271);
    for (const l of load) expect(l).toBeLessThanOrEqual(Math.ceil((1.25 * 271) / 4));
  });

  it('moves about 1/N of the partitions when an owner joins', () => {
    const before = assignPartitions(271, [0, 1, 2, 3]);
    const after = assignPartitions(271, [0, 1, 2, 3, 4]);
    let moved = 0;
    for (let p = 0; p < 271; p++) if (before[p] !== after[p]) moved++;
    expect(moved).toBeGreaterThan(271 / 5 - 30);
    expect(moved).toBeLessThan(271 / 5 + 40);
  });

  it('is deterministic', () => {
    expect(assignPartitions(271, [0, 1])).toEqual(assignPartitions(271, [0, 1]));
  });
});
