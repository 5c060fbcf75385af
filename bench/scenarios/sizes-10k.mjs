// Key-count sweep at 10_000 keys (issue 12): scan / uniform / Zipf(0.99) × get, getSync, set, setSync
// against Map and lru-cache (bench/lib/sizes.mjs).
import { scenario } from '../lib/harness.mjs';
import { sizeSweep } from '../lib/sizes.mjs';

await scenario({
  name: 'sizes-10k',
  title: 'key-count sweep, 10_000 keys',
  description: '10_000 keys with 100-byte string values, read and overwritten in three orders: round-robin scan, uniform random, Zipf(0.99). Map, lru-cache (maxSize = the grid budget) and shardgrid in one process.',
}, (ctx) => sizeSweep(ctx, 10_000));
