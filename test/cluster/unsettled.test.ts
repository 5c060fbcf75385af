// Reads during replication (cluster/unsettled.ts): the state a primary serves for a key while
// writes of it are being replicated is always one its copies hold.
import { describe, expect, it } from 'vitest';
import { UnsettledWrites } from '../../dist/cluster/unsettled.js';
import type { RawState } from '../../dist/cluster/records.js';
import { T_STRING } from '../../dist/storage/layout.js';

/** The store side: per-partition counts of unsettled keys. */
function fakeStore() {
  const counts = new Map<number, number>();
  return {
    counts,
    addUnsettled(p: number, d: number) {
      const n = (counts.get(p) ?? 0) + d;
      if (n < 0) throw new Error(`partition ${p} count below 0`);
      counts.set(p, n);
    },
  };
}
const s = (v: string): RawState => [T_STRING, v, 0];

describe('UnsettledWrites', () => {
  it('serves the state before the first unsettled write, then each acknowledged state, and forgets the key once all settled', () => {
    const st = fakeStore();
    const un = new UnsettledWrites(st as never);
    const u = un.begin(3, 'm\u0000k', () => s('v0'));
    expect(st.counts.get(3)).toBe(1);
    const seq1 = un.shipped(u); // write 1 applied and shipped as v1
    const u2 = un.begin(3, 'm\u0000k', () => {
      throw new Error('pre() is read only for the first unsettled write');
    });
    expect(u2).toBe(u);
    const seq2 = un.shipped(u); // write 2 shipped as v2
    expect(un.get('m\u0000k')!.stable).toEqual(s('v0'));
    // write 2 acknowledged first: its state includes write 1
    un.settle('m\u0000k', u, seq2, s('v2'), true);
    expect(un.get('m\u0000k')!.stable).toEqual(s('v2'));
    // write 1's late acknowledgement does not take the state back
    un.settle('m\u0000k', u, seq1, s('v1'), true);
    expect(un.get('m\u0000k')).toBeUndefined();
    expect(st.counts.get(3)).toBe(0);
  });

  it('a write that failed after it was applied keeps the key on its copies state until a later state is acknowledged', () => {
    const st = fakeStore();
    const un = new UnsettledWrites(st as never);
    const k = 'm\u0000k';
    let u = un.begin(1, k, () => null);
    const seq1 = un.shipped(u);
    un.settle(k, u, seq1, s('v1'), false);
    expect(un.get(k)?.stable).toBeNull(); // still absent on the copies
    expect(st.counts.get(1)).toBe(1);
    u = un.begin(1, k, () => s('ignored'));
    const seq2 = un.shipped(u);
    un.settle(k, u, seq2, s('v2'), true);
    expect(un.get(k)).toBeUndefined();
    expect(st.counts.get(1)).toBe(0);
  });

  it('an acknowledged state read before a failure does not clear it', () => {
    const st = fakeStore();
    const un = new UnsettledWrites(st as never);
    const k = 'm\u0000k';
    const u = un.begin(1, k, () => s('v0'));
    const seqA = un.shipped(u); // write A shipped
    un.begin(1, k, () => null); // write B applied, not shipped yet
    un.settle(k, u, 0, null, false); // B fails before shipping
    un.settle(k, u, seqA, s('vA'), true); // A's state predates B's failure
    expect(un.get(k)?.stable).toEqual(s('vA'));
    expect(st.counts.get(1)).toBe(1);
  });

  it('an abandoned write (its apply threw) leaves nothing behind; dropWhere forgets the keys of partitions that moved', () => {
    const st = fakeStore();
    const un = new UnsettledWrites(st as never);
    const u = un.begin(2, 'a', () => s('x'));
    un.abandon('a', u);
    expect(un.size).toBe(0);
    const ua = un.begin(2, 'a', () => s('x'));
    un.begin(5, 'b', () => s('y'));
    un.dropWhere((p) => p === 2);
    expect(un.get('a')).toBeUndefined();
    expect(un.get('b')).toBeDefined();
    expect(st.counts.get(2)).toBe(0);
    // the dropped write settling later changes nothing
    un.settle('a', ua, un.shipped(ua), s('z'), true);
    expect(st.counts.get(2)).toBe(0);
    expect(un.size).toBe(1);
  });
  it('a write that passes its state only when needsState says so leaves the same served states as one that always passes it', () => {
    // serveSet decodes the value it shipped only when needsState(u) holds at its settle
    // (replicas.ts shipPut); a model run beside it always passes the state
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return (seed >>> 16) % n; // the high bits: the low ones of this generator cycle shortly
    };
    const keys = ['m\u0000a', 'm\u0000b'];
    for (let run = 0; run < 200; run++) {
      const model = new UnsettledWrites(fakeStore() as never);
      const lazy = new UnsettledWrites(fakeStore() as never);
      // writes in flight: [key, model record, lazy record, seq, state]
      const open: Array<[string, ReturnType<typeof model.begin>, ReturnType<typeof lazy.begin>, number, RawState]> = [];
      let v = 0;
      for (let step = 0; step < 40; step++) {
        if (open.length === 0 || rnd(2) === 0) {
          const k = keys[rnd(2)];
          const pre = s(`pre${v}`);
          const um = model.begin(0, k, () => pre);
          const ul = lazy.join(k) ?? lazy.create(0, k, pre);
          const state = s(`v${++v}`);
          open.push([k, um, ul, model.shipped(um), state]);
          lazy.shipped(ul);
        } else {
          const [k, um, ul, seq, state] = open.splice(rnd(open.length), 1)[0];
          const ok = rnd(4) !== 0;
          const passed = ok && lazy.needsState(ul) ? state : null;
          model.settle(k, um, seq, state, ok);
          lazy.settle(k, ul, seq, passed, ok);
        }
        for (const k of keys) expect(lazy.get(k)?.stable).toEqual(model.get(k)?.stable);
        expect(lazy.size).toBe(model.size);
      }
    }
  });
});
