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

  it('an expired record put again is not lost when its old place in the ring is reused', () => {
    for (const id of ['whole-id', 'm-1.5']) {
      const d = new Dedupe(1);
      d.put(0, 'm-1.4', undefined);
      d.put(0, id, 'old', Date.now() - DEDUPE_TTL_MS - 1); // between two records of its client: not at the front
      d.put(0, 'm-1.6', undefined);
      expect(d.has(0, id)).toBe(false); // expired: forgotten, its slot stays in the ring
      d.put(0, id, 'new');
      expect(d.entries(0).map((e) => e[0])).toEqual(['m-1.4', 'm-1.6', id]);
      for (let i = 0; i < DEDUPE_MAX_PER_PARTITION - 4; i++) d.put(0, `x.${i}`, undefined); // the ring is full now
      d.put(0, 'one-more', undefined); // the ring is full: the oldest slots (m-1.4's, then the expired record's) are reused
      d.put(0, 'two-more', undefined);
      expect(d.get(0, id)).toEqual({ result: 'new' });
      expect(d.has(0, 'm-1.4')).toBe(false);
      expect(d.has(0, 'm-1.6')).toBe(true);
    }
  });

  /**
   * Dedupe against a plain reference model (ids as strings, insertion order, the oldest evicted
   * first, TTL by `at`), fed by `next(rnd)`: the id of each step.
   */
  function againstModel(next: (rnd: (n: number) => number) => string, steps: number): void {
    const parts = 3;
    const d = new Dedupe(parts);
    type Rec = { result: unknown; at: number };
    const ref = Array.from({ length: parts }, () => ({ order: [] as Array<[string, Rec]>, recs: new Map<string, Rec>() }));
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const now = Date.now();
    for (let step = 0; step < steps; step++) {
      const p = rnd(parts);
      const id = next(rnd);
      const r = ref[p];
      if (rnd(3) === 0) {
        const rec = r.recs.get(id);
        const live = rec !== undefined && now - rec.at <= DEDUPE_TTL_MS;
        expect(d.has(p, id)).toBe(live);
        if (live) expect(d.get(p, id)).toEqual({ result: rec.result });
        else if (rec !== undefined) r.recs.delete(id); // expired: the model forgets it as Dedupe does
        continue;
      }
      const result = rnd(2) === 0 ? undefined : step;
      const at = rnd(50) === 0 ? now - DEDUPE_TTL_MS - 1 : now;
      const rec = r.recs.get(id);
      if (rec !== undefined) Object.assign(rec, { result, at });
      else {
        // the order holds every record put and not evicted, forgotten expired ones included (as
        // the ring does); evicting one forgotten and put again since leaves the new one alone
        const fresh = { result, at };
        r.order.push([id, fresh]);
        if (r.order.length > DEDUPE_MAX_PER_PARTITION) {
          const [old, oldRec] = r.order.shift()!;
          if (r.recs.get(old) === oldRec) r.recs.delete(old);
        }
        r.recs.set(id, fresh);
      }
      d.put(p, id, result, at);
    }
    for (let p = 0; p < parts; p++) {
      const live = ref[p].order.filter(([id, rec]) => ref[p].recs.get(id) === rec && now - rec.at <= DEDUPE_TTL_MS).map(([id]) => id);
      expect(d.entries(p).map((e) => e[0])).toEqual(live);
      for (const [id, result] of d.entries(p)) expect(result).toEqual(ref[p].recs.get(id)!.result);
    }
  }

  it('ids of every form: counters kept as numbers and non-canonical ids kept whole give the same answers as a plain reference model', () => {
    const forms = [
      (i: number) => `m-a.${i.toString(36)}`,
      (i: number) => `lite-b.${i.toString(36)}`,
      (i: number) => `m-a.0${i.toString(36)}`, // leading zero: not canonical, kept whole
      (i: number) => `m-a.${i.toString(36).toUpperCase()}`, // upper case: kept whole unless all digits
      (i: number) => `no-dot-${i}`,
      (i: number) => `a.b.${i.toString(36)}`,
      (i: number) => `x.${'z'.repeat(11)}${i}`, // counter too long for a double: whole
      () => 'm-a.',
      () => '.7',
    ];
    // some ids often: retries, expiry then reuse
    againstModel((rnd) => forms[rnd(forms.length)](rnd(2) === 0 ? rnd(64) : rnd(DEDUPE_MAX_PER_PARTITION * 2)), 60_000);
  });

  it('counters in the order clients send them (kept in order, without a hash table), with retries out of order, give the same answers as the model', () => {
    // two clients with increasing counters (each partition sees an increasing subsequence), 1 in 4
    // ids a retry of one of the last 50 (found, or out of order where it was never put or expired),
    // 1 in 50 an old one; eviction wraps each partition's ring several times
    const seqs = [0, 0];
    const prefixes = ['m-a', 'lite-b'];
    againstModel((rnd) => {
      const c = rnd(7) === 0 ? 1 : 0;
      const r = rnd(200);
      const n = r < 50 ? Math.max(0, seqs[c] - rnd(50)) : r < 54 ? rnd(seqs[c] + 1) : ++seqs[c];
      return `${prefixes[c]}.${n.toString(36)}`;
    }, 100_000);
  });
});
