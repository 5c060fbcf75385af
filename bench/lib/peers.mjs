// The things shardgrid is measured against, configured the same way in every scenario, and the
// shared workload pieces (keys, values). Bounds: the grid gets a memory budget; lru-cache gets the
// same budget as `maxSize` with a `sizeCalculation`, and the same TTL where the grid map has one.
import { LRUCache } from 'lru-cache';

export const GRID_MEMORY = '256MB';
export const GRID_MEMORY_BYTES = 256 * 1024 * 1024;
export const GRID_WORKERS = 2;

/** Approximate entry size for lru-cache's maxSize accounting: key and value bytes (objects: a flat 100). */
export function entrySize(value, key) {
  const v = typeof value === 'string' ? value.length : value?.byteLength ?? 100;
  return key.length + v || 1;
}

/** lru-cache bounded like the grid (maxSize = the grid's memory budget), with the grid map's TTL if any. */
export function makeLru({ ttl, maxBytes = GRID_MEMORY_BYTES } = {}) {
  const opts = { maxSize: maxBytes, sizeCalculation: entrySize };
  if (ttl !== undefined) opts.ttl = ttl;
  return new LRUCache(opts);
}

export const keyOf = (i) => `key:${i}`;
export const makeKeys = (n, prefix = 'key:') => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** A value for each kind the scenarios use. Strings are flat one-byte strings of exactly that length. */
export const VALUES = {
  '16B': 'abcdefghijklmnop',
  '100B': 'v'.repeat(100),
  '4KB': 'w'.repeat(4096),
  object: { id: 1042, name: 'Ada Lovelace', tags: ['math', 'engines', 'poetry'], score: 98.5 },
};

/** How a Redis user stores a value: strings as they are, objects as JSON. */
export const redisEncode = (v) => (typeof v === 'string' ? v : JSON.stringify(v));
export const redisDecodeObject = (s) => (s === null ? undefined : JSON.parse(s));

/**
 * A flat (sequential, one-byte) string of exactly `len` characters starting with `prefix`.
 * padEnd returns a cons string (prefix + filler) that costs ~2.5x the heap of a flat one, which
 * would make the JS-heap peers look worse than an application's real strings.
 */
export const flatValue = (prefix, len = 100) => Buffer.from(prefix.padEnd(len, 'v'), 'latin1').toString('latin1');
