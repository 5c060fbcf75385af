// The exactly-once records (src/cluster/dedupe.ts): bounded per partition with the oldest evicted
// first, expired after DEDUPE_TTL_MS, shipped in snapshots, and `once` runs a request id once.
import { describe, expect, it } from 'vitest';
import { DEDUPE_MAX_PER_PARTITION, DEDUPE_TTL_MS, Dedupe, parseDedupeEntries } from '../../dist/cluster/dedupe.js';

describe('Dedupe records', () => {
  it('keeps at most DEDUPE_MAX_PER_PARTITION records per partition and evicts the oldest first', () => {
    const d = new Dedupe(4);
    const n = DEDUPE_MAX_PER_PARTITION + 1000;
    for (let i = 0; i < n; i++) d.put(1, `m-1.${i}`, i % 2 === 0 ? undefined : i);
    expect(d.entries(1).length).toBe(DEDUPE_MAX_PER_PARTITION);
    for (let i = 0; i < 1000; i++) expect(d.has(1, `m-1.${i}`)).toBe(false);
    for (let i = 1000; i < n; i++) expect(d.has(1, `m-1.${i}`)).toBe(true);
    expect(d.get(1, `m-1.${n - 1}`)).toMatchObject({ result: n - 1 }); // n - 1 is odd: a recorded result
    expect(d.get(1, `m-1.${n - 2}`)).toEqual({ result: undefined }); // a set's record: no result
    // other partitions are untouched
    expect(d.entries(0)).toEqual([]);
  });

  it('a record put again keeps its place in the eviction order (a retry does not renew it)', () => {
    const d = new Dedupe(1);
    d.put(0, 'first', 1);
    for (let i = 0; i < DEDUPE_MAX_PER_PARTITION - 1; i++) d.put(0, `x.${i}`, undefined);
    d.put(0, 'first', 2); // again: updated, not moved
    expect(d.get(0, 'first')).toMatchObject({ result: 2 });
    d.put(0, 'one-more', undefined);
    expect(d.has(0, 'first')).toBe(false);
    expect(d.has(0, 'x.0')).toBe(true);
  });

  it('expires records older than DEDUPE_TTL_MS and ships only live ones', () => {
    const d = new Dedupe(2);
    d.put(0, 'old', 'r', Date.now() - DEDUPE_TTL_MS - 1);
    d.put(0, 'new', 'r');
    expect(d.entries(0).map((e) => e[0])).toEqual(['new']);
    expect(d.has(0, 'old')).toBe(false);
    expect(d.has(0, 'new')).toBe(true);
  });

  it('snapshot entries round-trip through parseDedupeEntries; malformed ones are refused', () => {
    const d = new Dedupe(1);
    d.put(0, 'a.1', undefined, 1000);
    d.put(0, 'a.2', [1, 'x'], 2000);
    const e = parseDedupeEntries(JSON.parse(JSON.stringify(d.entries(0).map((x) => [x[0], x[1] ?? null, x[2]]))));
    expect(e).toBeDefined();
    expect(parseDedupeEntries([['', 1, 1]])).toBeUndefined();
    expect(parseDedupeEntries([['id', 1]])).toBeUndefined();
    expect(parseDedupeEntries('nope')).toBeUndefined();
    expect(parseDedupeEntries(undefined)).toEqual([]);
  });

  it('once: concurrent calls of one id run the write once; later calls get the recorded result', async () => {
    const d = new Dedupe(1);
    let runs = 0;
    const apply = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 10));
      d.put(0, 'id', runs);
      return runs;
    };
    let again = 0;
    const results = await Promise.all([0, 1, 2].map(() => d.once(0, 'id', apply, () => (again++, undefined))));
    expect(runs).toBe(1);
    expect(results).toEqual([1, 1, 1]);
    expect(await d.once(0, 'id', apply, () => (again++, undefined))).toBe(1);
    expect(runs).toBe(1);
    expect(again).toBe(1);
  });
});
