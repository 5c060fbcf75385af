// No dirty reads on a primary (issue 10; nemesis seed 8000 schedule 34): while a write's copy has
// not acknowledged it, every read path of the primary — the member's own get/getSync/getMany/has,
// a FAST GET and MGET from another member, a thread attached to the member — serves the state the
// copy holds, not the newer local one. The copy is held back by SIGSTOP. The negative control
// (the test-only bypass, SHARDGRID_UNSAFE_DIRTY_READS) makes the same reads see the unacknowledged
// value, so the checks can fail.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachGrid, createGrid, type Grid } from '../../dist/index.js';
import { Transport } from '../../dist/transport/transport.js';
import { GetCall, MgetCall, SetCall, promiseOf, sendGet, sendMget, sendSet } from '../../dist/cluster/fast-ops.js';
import { ValueEncoder } from '../../dist/storage/codec.js';
import { tryLock, unlock } from '../../dist/sync/mutex.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'dirty-read-test-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reads on a primary serve what its copies hold', () => {
  let other: GridProcess;
  let grid: Grid;
  let attached: Grid;
  let peer: Transport;

  const rawGet = async (key: string): Promise<unknown> => {
    const c = new GetCall(undefined, 0, key);
    const pr = promiseOf(c);
    if (!sendGet(peer.peer(grid.cluster!.memberId)!, 'dirty', key, Buffer.byteLength(key), c)) throw new Error('not sent');
    return pr;
  };
  const rawMget = async (keys: string[]): Promise<unknown[]> => {
    const c = new MgetCall(keys.length);
    const pr = promiseOf(c);
    if (!sendMget(peer.peer(grid.cluster!.memberId)!, 'dirty', keys, c)) throw new Error('not sent');
    return pr;
  };
  /** Keys whose primary is the in-process member. */
  const localKeys = (n: number, tag: string): string[] => {
    const rep = grid.cluster!.replicas;
    const out: string[] = [];
    for (let i = 0; out.length < n; i++) if (rep.serves(rep.records.partitionOf(`${tag}-${i}`))) out.push(`${tag}-${i}`);
    return out;
  };

  beforeAll(async () => {
    other = await startGridMember({ backups: 1 }, SECRET);
    grid = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, seeds: [other.url], secret: SECRET, backups: 1 } });
    attached = await attachGrid(grid.handle);
    peer = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `m-${randomBytes(6).toString('hex')}`, log: () => undefined });
    await peer.connect(grid.cluster!.url);
    // both members primaries, every copy streamed
    for (let t = 0; t < 240; t++) {
      const st = grid.stats();
      if (st.cluster!.migrating === 0 && st.members!.filter((x) => !x.lite && x.primaries > 0).length === 2 && grid.cluster!.replicas.primaries().length > 0) break;
      await sleep(250);
    }
  }, 120_000);

  afterAll(async () => {
    other?.proc.kill('SIGCONT');
    await attached?.close();
    await peer?.close();
    await grid?.close();
    other?.proc.kill('SIGKILL');
  });

  it('a write its copy has not acknowledged is invisible to every read path until it is; with the bypass it is visible', async () => {
    const m = grid.map<string>('dirty');
    const am = attached.map<string>('dirty');
    const rep = grid.cluster!.replicas;
    // serves(): with a lease now (retry until one is held after the start)
    let keys: string[] = [];
    for (let t = 0; t < 40 && keys.length === 0; t++) {
      try {
        keys = localKeys(2, `k${t}`);
      } catch {
        await sleep(250);
      }
    }
    const [k, kc] = keys;
    await m.set(k, 'v1');
    await m.set(kc, 'c1');
    expect(await m.get(k)).toBe('v1');

    other.proc.kill('SIGSTOP');
    const fate = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));
    const pending = fate(m.set(k, 'v2'));
    rep.unsettled.bypass = true; // the control's write is not tracked
    const control = fate(m.set(kc, 'c2'));
    rep.unsettled.bypass = false;
    await sleep(30);
    let settled = 'pending';
    void pending.then((r) => (settled = r));
    expect(settled).toBe('pending'); // applied here, its copy stopped
    expect(rep.unsettledOf('dirty', k)?.stable?.[1]).toBe('v1');

    const p = rep.records.partitionOf(k);
    expect(rep.unsettledIn(p)).toBe(true);
    // the member's own reads
    expect(await m.get(k)).toBe('v1');
    expect(m.getSync(k)).toBe('v1');
    expect(await m.getMany([k, kc])).toEqual(['v1', 'c2']); // kc: the control, dirty
    expect(await m.has(k)).toBe(true);
    // another member's FAST GET and MGET
    expect(await rawGet(k)).toBe('v1');
    expect(await rawMget([kc, k])).toEqual(['c2', 'v1']);
    // a thread attached to the member: get goes through the main thread; getSync cannot wait here (same thread)
    expect(await am.get(k)).toBe('v1');
    expect(() => am.getSync(k)).toThrow(expect.objectContaining({ code: 'GRID_ERR_PARTITION_UNAVAILABLE' }));
    // the control: the same paths see its unacknowledged value
    expect(await m.get(kc)).toBe('c2');
    expect(await rawGet(kc)).toBe('c2');

    other.proc.kill('SIGCONT');
    expect(await pending).toBe('ok');
    expect(await control).toBe('ok');
    expect(rep.unsettledOf('dirty', k)).toBeUndefined();
    expect(rep.unsettledIn(p)).toBe(false);
    expect(await m.get(k)).toBe('v2');
    expect(await rawGet(k)).toBe('v2');
    expect(await am.get(k)).toBe('v2');
    expect(am.getSync(k)).toBe('v2');
  }, 60_000);

  it("an attached thread does not read a local primary after the member's lease ran out (a pause: the main thread has not noticed yet)", async () => {
    const m = grid.map<string>('dirty');
    const am = attached.map<string>('dirty');
    let k = '';
    for (let t = 0; t < 40 && k === ''; t++) {
      try {
        k = localKeys(1, `lease${t}`)[0];
      } catch {
        await sleep(250);
      }
    }
    await m.set(k, 'x1');
    for (let t = 0; t < 40; t++) {
      try {
        am.getSync(k);
        break;
      } catch {
        await sleep(50); // the lease of the moment may be catching up after the set
      }
    }
    expect(am.getSync(k)).toBe('x1'); // the control: read directly while the lease runs
    // block this thread (the member's main thread) past the lease, as a SIGSTOP or a long GC would:
    // no timer, no message runs meanwhile, so nothing but the reader's own clock can tell
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2_000);
    expect(() => am.getSync(k)).toThrow(expect.objectContaining({ code: 'GRID_ERR_PARTITION_UNAVAILABLE' }));
    expect(() => m.getSync(k)).toThrow(expect.objectContaining({ code: 'GRID_ERR_PARTITION_UNAVAILABLE' }));
    // nor write it: a set of a key whose primary is this member checks the lease as the reads do,
    // and goes through once the lease is renewed. (A path that wrote within the call, without
    // that check, had 'x2' in shared memory at once.)
    const setting = m.set(k, 'x2');
    expect(grid.cluster!.replicas.records.stateNow('dirty', k)?.[1]).toBe('x1');
    await setting;
    expect(await m.get(k)).toBe('x2');
    expect(grid.cluster!.replicas.records.stateNow('dirty', k)?.[1]).toBe('x2');
  }, 60_000);
  it("a FAST SET on its primary and the REP on its copy wait while another writer holds the partition's lock, then apply in turn", async () => {
    const m = grid.map<string>('dirty');
    const rep = grid.cluster!.replicas;
    const st = (rep.records as unknown as { store: { ci: Int32Array; lockIndex(p: number): number } }).store;
    const fate = (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code ?? String(e));
    let kp = ''; // primary here: serveSet's queued path
    let kc = ''; // primary on the other member, copy here: serveRep's queued path
    for (let i = 0; kp === '' || kc === ''; i++) {
      const k = `busy-${i}`;
      if (rep.serves(rep.records.partitionOf(k))) kp ||= k;
      else if (!rep.isPrimary(rep.records.partitionOf(k))) kc ||= k;
    }
    await m.set(kp, 'p0');
    await m.set(kc, 'c0');
    const enc = new ValueEncoder(1 << 10);
    for (const [k, v] of [[kp, 'p1'], [kc, 'c1']]) {
      const li = st.lockIndex(rep.records.partitionOf(k));
      expect(tryLock(st.ci, li)).toBe(true); // another writer of the partition (a thread's sweep, say)
      let done: Promise<string>;
      if (k === kp) {
        // another member's FAST SET to this primary
        enc.encode(v);
        const c = new SetCall({ getRouted: (_p, _k, e) => Promise.reject(e), setRouted: (_p, _k, _v, _x, e) => Promise.reject(e) }, 0, k, v, 0, `busy-test.${k}`);
        done = fate(promiseOf(c));
        expect(sendSet(peer.peer(grid.cluster!.memberId)!, 'dirty', k, Buffer.byteLength(k), `busy-test.${k}`, enc, 0, c)).toBe(true);
      } else {
        done = fate(m.set(k, v)); // to the other member, whose REP comes back here
      }
      await sleep(100);
      let settled = 'pending';
      void done.then((r) => (settled = r));
      expect(settled).toBe('pending'); // neither applies nor acknowledges while the lock is held
      unlock(st.ci, li);
      expect(await done).toBe('ok');
      expect(rep.records.stateNow('dirty', k)?.[1]).toBe(v); // in this member's memory (primary, or copy)
      expect(await m.get(k)).toBe(v);
    }
  }, 60_000);
});
