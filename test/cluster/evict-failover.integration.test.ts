// A full cluster loses a member (issue 10's "survives the loss of a member", under memory
// pressure). Each member is at its memory budget and evicting; a set of hot keys is read
// throughout. Reads go to primaries, so before the eviction journal a backup saw only the hot
// keys' one write each and evicted them first: after `kill -9` of a member, most of the hot keys
// of its partitions were gone (a /tmp script, 2026-11-27: 1,757 of 2,000 readable before the
// kill, 1,115 after). Now a primary's evictions are shipped to its copies, copies evict last, and
// the keys a primary saw read are stamped on its copies too (the touch sweep): a copy holds what
// its primary held, aged alike, and a failover keeps the hot keys.
import { Registry } from 'prom-client';
import { afterAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';
import { tryLock, unlock } from '../../dist/sync/mutex.js';

const SECRET = 'evict-failover-test-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a failover while every member is full', () => {
  const procs: GridProcess[] = [];
  let grid: Grid | undefined;
  afterAll(async () => {
    await grid?.close();
    for (const p of procs) p.proc.kill('SIGKILL');
  });

  it('keeps the hot keys the lost member held: its copies dropped what it evicted, not what was read', { timeout: 120_000 }, async () => {
    const b = await startGridMember({ memory: '16MB', backups: 1 }, SECRET);
    procs.push(b);
    procs.push(await startGridMember({ memory: '16MB', backups: 1, seeds: [b.url] }, SECRET));
    grid = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, seeds: [b.url], secret: SECRET, backups: 1 } });
    for (let t = 0; t < 240; t++) {
      const s = grid.stats();
      if (s.cluster!.migrating === 0 && s.members!.filter((x) => !x.lite && x.primaries > 0).length === 3) break;
      await sleep(250);
    }
    // a touch batch is peer data: malformed ones are refused, and touches not from the partition's
    // primary at its epoch (here: from a stranger) change nothing
    const rep = grid.cluster!.replicas;
    for (const bad of [null, 7, { tv: 1 }, { tv: 1, e: {} }, { tv: 1, e: [[0, 1, 'm']] }, { tv: 1, e: [[-1, 1, 'm', 'k']] }, { tv: 1, e: [[0.5, 1, 'm', 'k']] }, { tv: 1, e: [[99999, 1, 'm', 'k']] }, { tv: 1, e: [[0, 1, 'm', 7]] }, { tv: 1, e: [[0, 1, 'x'.repeat(300), 'k']] }, { tv: 1, e: Array.from({ length: 513 }, () => [0, 1, 'm', 'k']) }]) {
      expect(() => rep.onTouch(bad, 'm-stranger'), JSON.stringify(bad)?.slice(0, 60)).toThrow(expect.objectContaining({ code: 'GRID_ERR_PROTOCOL' }));
    }
    const applied = rep.touchesApplied;
    expect(rep.onTouch({ tv: 1, e: [[0, 1, 'm', 'k'], [1, 1, 'm', 'k']] }, 'm-stranger')).toBe(true);
    expect(rep.touchesApplied).toBe(applied);
    const m = grid.map<string>('m');
    const HOT = 1000;
    const hot = Array.from({ length: HOT }, (_, i) => `hot-${i}`);
    for (let i = 0; i < HOT; i += 100) await Promise.all(hot.slice(i, i + 100).map((k) => m.set(k, `h-${k}`)));
    const v = 'x'.repeat(100);
    const readHot = async (): Promise<number> => {
      let n = 0;
      for (let i = 0; i < HOT; i += 200) n += (await Promise.all(hot.slice(i, i + 200).map((k) => m.get(k)))).filter((x, j) => x === `h-${hot[i + j]}`).length;
      return n;
    };
    // fresh keys, far beyond what three 16 MB members hold, the hot keys read between batches
    for (let i = 0; i < 150_000; ) {
      const batch: Array<Promise<unknown>> = [];
      for (let k = 0; k < 250; k++) batch.push(m.set(`k${i++}`, v));
      await Promise.all(batch);
      if (i % 5_000 === 0) await readHot();
    }
    const evictions = grid.stats().evictions;
    expect(evictions).toBeGreaterThan(1000); // the members were full
    expect(grid.cluster!.replicas.evictionShips).toBeGreaterThan(0);
    // and an operator sees it: the member's metrics count the ships and the touches
    const reg = new Registry();
    grid.metrics.register(reg);
    const text = await reg.metrics();
    const value = (name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').filter((l) => l.startsWith(name)).join('\n'))?.[2] ?? NaN);
    expect(value('shardgrid_eviction_ships_total')).toBe(grid.cluster!.replicas.evictionShips);
    expect(value('shardgrid_eviction_journal_lost_total')).toBeGreaterThanOrEqual(0);
    // the write burst over, the hot keys are still read for a few seconds: the primaries' touch
    // sweeps (every 2 s) reach the copies. (This test packs a cache's fill into 15 s; without the
    // pause, the fresh keys of the burst's last seconds compete with the copies' hot-key stamps.)
    for (const end = Date.now() + 3000; Date.now() < end; ) {
      await readHot();
      await sleep(200);
    }
    // touches arrived from the other members (counted here as applied). Checked after the burst:
    // during it a member's journal stays half full of evictions and its touches wait (a clean-clone
    // CI run under load saw 0 applied right after the writes), and this member, whose main thread
    // drives the writes, sends none of its own then
    const after3s = await reg.metrics();
    const touchesIn = Number(/^shardgrid_touches_total\{direction="applied"\} (\S+)$/m.exec(after3s)?.[1] ?? NaN);
    expect(touchesIn).toBe(grid.cluster!.replicas.touchesApplied);
    expect(touchesIn).toBeGreaterThan(0);
    const before = await readHot();
    expect(before).toBeGreaterThan(HOT * 0.8);
    // kill -9 of a member other than this one (its partitions fail over to their backups)
    const victim = procs[1];
    victim.proc.kill('SIGKILL');
    await victim.exited;
    for (let t = 0; t < 240; t++) {
      await sleep(250);
      const s = grid.stats();
      if (s.cluster!.migrating === 0 && s.members!.filter((x) => !x.lite).length === 2) break;
    }
    const after = await readHot();
    // the same schedule by a /tmp script (a lite client, three member processes, the seed killed):
    // 0.70-0.73 of `before` with the old code, 0.95-0.99 now. This test itself (2026-11-28): 0.97-0.99
    // in most runs, and about one quiet run in five 0.82-0.89, while the virtual nodes' touch sweeps
    // read most partitions' tables past their heap views and sent no touches for them (copies
    // evicted 27-64 hot keys before the kill); since the sweep refreshes its views, 0.994-1.0 in 6
    // runs at load 9-14, the few lost evicted after the kill (native-notes.md, "Hot keys in a failover")
    expect(after).toBeGreaterThanOrEqual(before * 0.9);
    // after the failover (its copies rebuilt, members still full): every key a primary holds, its
    // copy holds. Of the partitions this member copies, each key is looked up here first, then at
    // its primary (no writes run now, so a key the primary still holds after its copy lacked it
    // is one the copy dropped on its own). Before the kill, by a /tmp script: old code 12 % of the
    // primaries' keys had no copy (15,432 of 129,186), now 0 of 91,337. (Last: its reads of cold
    // keys would make them as fresh as the hot ones.) And the other way: a key the copy holds and
    // its primary does not is one whose eviction never reached the copy (memory the copy's member
    // then takes from its own primaries). The copies rebuilt after the kill are applied in 1 MiB
    // snapshot chunks whose inserts evict thousands of keys in one call: the journal (2,048 slots)
    // overflowed and 5,000-14,000 such keys stayed here (13,826 journal entries lost) until the
    // snapshot path drained it as it went; 4 since.
    const local = grid.cluster!.replicas;
    let checked = 0;
    let copyLacks = 0;
    let orphans = 0;
    const held: string[] = [];
    for (let j = 0; j < 150_000; j += 500) {
      const keys = Array.from({ length: 500 }, (_, x) => `k${j + x}`).filter((k) => {
        const p = local.records.partitionOf(k);
        return !local.isPrimary(p) && local.table!.owners[p].includes(grid!.cluster!.memberId);
      });
      const here = keys.map((k) => local.records.stateNow('m', k) !== null);
      const there = await Promise.all(keys.map((k) => m.get(k)));
      for (let x = 0; x < keys.length; x++) {
        if (there[x] === undefined) {
          if (here[x]) held.push(keys[x]);
          continue;
        }
        checked++;
        if (!here[x]) copyLacks++;
      }
    }
    // A key the primary evicted between the two reads (the full members still evict for a while:
    // their copies' pressure reports) has its eviction on the way here: looked at again once any
    // such shipment has arrived. (Counted at once, a loaded run saw 2,343 here.)
    await sleep(500);
    const stillThere = await Promise.all(held.map((k) => m.get(k)));
    for (let x = 0; x < held.length; x++) if (stillThere[x] === undefined && local.records.stateNow('m', held[x]) !== null) orphans++;
    expect(checked).toBeGreaterThan(5000);
    // Since a copy with no room for a key's new value drops the key as an eviction (copy-full
    // test) instead of refusing the write, a copy may lack a few: 44 of 31,464 in a clean-clone CI
    // run (2026-11-27), over the 0.1 % this bound was before; the old code lacked 12 %.
    expect(copyLacks).toBeLessThanOrEqual(checked / 200);
    expect(orphans).toBeLessThanOrEqual(checked / 100);
  });
});

describe('a copy that applies a large replicated value while full', () => {
  const procs: GridProcess[] = [];
  let grid: Grid | undefined;
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await grid?.close();
  });

  it('ships every eviction it makes to its own primaries\' copies: none lost, however many one value makes', { timeout: 120_000 }, async () => {
    const b = await startGridMember({ memory: '16MB', backups: 1 }, SECRET);
    procs.push(b);
    grid = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, seeds: [b.url], secret: SECRET, backups: 1 } });
    for (let t = 0; t < 240; t++) {
      const s = grid.stats();
      if (s.cluster!.migrating === 0 && s.members!.filter((x) => !x.lite && x.primaries > 0).length === 2) break;
      await sleep(250);
    }
    const m = grid.map<string>('m');
    const v = 'x'.repeat(100);
    for (let i = 0; i < 120_000; ) {
      const batch: Array<Promise<unknown>> = [];
      for (let k = 0; k < 250; k++) batch.push(m.set(`k${i++}`, v));
      await Promise.all(batch);
    }
    const journal = (grid as unknown as { store: { journal: { lostCount: number } } }).store.journal;
    const rep = grid.cluster!.replicas;
    const lost0 = journal.lostCount;
    const ships0 = rep.evictionShips;
    // values of 700 KiB whose primary is the other member: this member applies each as a copy,
    // and making room for it evicts ~5,000 of its own primaries' 100 B entries in that one call,
    // more than the journal's ring holds (2,048 slots)
    const big = 'y'.repeat(700 * 1024);
    let sent = 0;
    for (let i = 0; sent < 8; i++) {
      const k = `big${i}`;
      if (rep.isPrimary(rep.records.partitionOf(k))) continue;
      await m.set(k, big);
      sent++;
    }
    await sleep(200);
    // before the consumer thread kept its overflow aside: 14,973 lost here in one run
    expect(journal.lostCount - lost0).toBe(0);
    expect(rep.evictionShips - ships0).toBeGreaterThan(2048);

    // A copy's pressure (grid.pressure, sent by a member that evicts its own primaries' entries
    // while its memory holds copies): this member, primary of the partitions the other copies,
    // evicts at most n of their entries older than the age the other evicts at, never one
    // accessed within two clock ticks. Malformed reports are refused; a member that holds no copy
    // here, or a second report within 200 ms, evicts nothing.
    for (const bad of [null, 7, {}, { a: -1, n: 1 }, { a: Number.NaN, n: 1 }, { a: '5', n: 1 }, { a: 2 ** 40, n: 1 }, { a: 5, n: 0 }, { a: 5, n: 1.5 }, { a: 5 }]) {
      expect(() => rep.onPressure(bad, 'm-stranger'), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: 'GRID_ERR_PROTOCOL' }));
    }
    expect(rep.onPressure({ a: 0, n: 100 }, 'm-stranger')).toBe(0);
    const mine = Array.from({ length: 120_000 }, (_, i) => `k${i}`).filter((k) => rep.isPrimary(rep.records.partitionOf(k)));
    const other = rep.table!.owners[rep.records.partitionOf(mine[0])][1];
    expect(other).toBeDefined();
    const hot = mine.slice(-2000).filter((k) => rep.records.stateNow('m', k) !== null).slice(-200);
    expect(hot.length).toBe(200);
    await sleep(250);
    // every entry here was accessed over a second ago: none is older than an hour
    expect(rep.onPressure({ a: 3_600_000, n: 300 }, other)).toBe(0);
    await sleep(250);
    await Promise.all(hot.map((k) => m.get(k)));
    // (the other member's own reports, every 250 ms while it evicts, may have just used its turn)
    let evicted = 0;
    for (let i = 0; i < 20 && evicted === 0; i++) {
      evicted = rep.onPressure({ a: 0, n: 300 }, other);
      if (evicted === 0) await sleep(20);
    }
    expect(evicted).toBeGreaterThan(0);
    expect(evicted).toBeLessThanOrEqual(300);
    expect(rep.onPressure({ a: 0, n: 300 }, other)).toBe(0);
    for (const k of hot) expect(rep.records.stateNow('m', k), k).not.toBeNull();
    // an operator sees both directions
    const reg = new Registry();
    grid.metrics.register(reg);
    const text = await reg.metrics();
    expect(Number(/^shardgrid_pressure_total\{direction="evicted"\} (\S+)$/m.exec(text)?.[1])).toBe(rep.pressureEvictions);
    expect(Number(/^shardgrid_pressure_total\{direction="sent"\} (\S+)$/m.exec(text)?.[1])).toBe(rep.pressureSent);
    expect(rep.pressureEvictions).toBeGreaterThanOrEqual(evicted);
  });
});

describe('evictions made while the primary may not serve', () => {
  const grids: Grid[] = [];
  afterAll(async () => {
    for (const g of grids.reverse()) await g.close();
  });
  /** Two members of 16MB in this process, closed after the block. */
  const twoMembers = async (): Promise<[Grid, Grid]> => {
    const common = { workers: 1, memory: '16MB' } as const;
    const a = await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1 } });
    grids.push(a);
    const b = await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1, seeds: [a.cluster!.url] } });
    grids.push(b);
    for (let t = 0; t < 120; t++) {
      const s = a.stats();
      if (s.cluster!.migrating === 0 && s.members!.filter((x) => x.primaries > 0).length === 2 && b.stats().cluster!.migrating === 0) break;
      await sleep(250);
    }
    return [a, b];
  };

  it("reach the copies once its lease covers the partition again (they were dropped: the copies kept every key)", { timeout: 60_000 }, async () => {
    const [a, b] = await twoMembers();
    const ra = a.cluster!.replicas;
    const rb = b.cluster!.replicas;
    const m = a.map<string>('m');
    const keys: string[] = [];
    for (let i = 0; keys.length < 300; i++) if (ra.isPrimary(ra.records.partitionOf(`e${i}`))) keys.push(`e${i}`);
    await Promise.all(keys.map((k) => m.set(k, `v-${k}`)));
    const heldByB = (): number => keys.filter((k) => rb.records.stateNow('m', k) !== null).length;
    expect(heldByB()).toBe(keys.length);
    // a's lease lapses (as under a long pause or a starved event loop), and a evicts the keys
    const lease = (ra as unknown as { ctx: { meta: { lease: { covers(e: number): boolean } } } }).ctx.meta.lease;
    const covers = lease.covers;
    lease.covers = () => false;
    try {
      const st = a.store as unknown as { ci: Int32Array; setKey(key: string, mapId: number): number; kpart: number; lockIndex(p: number): number; beginWrite(p: number): void; endWrite(p: number): void; evictKey(p: number, mapId: number): boolean };
      const mapId = (m as unknown as { id: number }).id;
      for (const k of keys) {
        st.setKey(k, mapId);
        const p = st.kpart;
        expect(tryLock(st.ci, st.lockIndex(p))).toBe(true);
        st.beginWrite(p);
        try {
          expect(st.evictKey(p, mapId)).toBe(true);
        } finally {
          st.endWrite(p);
          unlock(st.ci, st.lockIndex(p));
        }
      }
      await sleep(300); // the journal is drained every 5 ms: nothing may be shipped, or dropped
      expect(heldByB()).toBe(keys.length);
    } finally {
      lease.covers = covers;
    }
    for (let t = 0; t < 200 && heldByB() > 0; t++) await sleep(50);
    expect(heldByB()).toBe(0);
    expect(ra.evictionsUnshipped).toBe(0);
  });

  // A read of a partition with a write being replicated is served from its state (what the copies
  // hold), by the primary's own get and by a peer's FAST GET alike; that path stamped no access, so
  // under a write burst the keys read most aged as if never read and were evicted first (loaded
  // runs of the test above: hot keys evicted at ages of 23-86 s while read every second or two)
  it('stamp the keys read while their partition has a write being replicated, as any read does', { timeout: 60_000 }, async () => {
    const [a, b] = await twoMembers();
    const ra = a.cluster!.replicas;
    const m = a.map<string>('m');
    const keys: string[] = [];
    for (let i = 0; keys.length < 2; i++) if (ra.isPrimary(ra.records.partitionOf(`t${i}`))) keys.push(`t${i}`);
    await Promise.all(keys.map((k) => m.set(k, `v-${k}`)));
    const st = a.store as unknown as { setKey(k: string, id: number): number; kpart: number; probe(p: number, id: number): number; acc: Uint16Array; clock(): number };
    const mapId = (m as unknown as { id: number }).id;
    const stamp = (k: string): number => {
      st.setKey(k, mapId);
      const off = st.probe(st.kpart, mapId);
      expect(off).toBeGreaterThanOrEqual(0);
      return st.acc[off >>> 6];
    };
    // a write of another key of each key's partition stays unsettled (as while its copy is slow)
    const unsettled = (ra as unknown as { unsettled: { begin(p: number, k: string, pre: () => null): unknown; abandon(k: string, u: unknown): void } }).unsettled;
    const open = keys.map((k) => {
      const p = ra.records.partitionOf(k);
      let other = '';
      for (let i = 0; other === ''; i++) if (ra.records.partitionOf(`o${i}`) === p && !keys.includes(`o${i}`)) other = `o${i}`;
      return [`m\u0000${other}`, unsettled.begin(p, `m\u0000${other}`, () => null)] as const;
    });
    try {
      for (const [k, read] of [[keys[0], () => m.get(keys[0])], [keys[1], () => b.map<string>('m').get(keys[1])]] as const) {
        expect(ra.unsettledIn(ra.records.partitionOf(k))).toBe(true);
        // the clock moves past the write's stamp (ticks of 100 ms)
        const written = stamp(k);
        while (st.clock() === written) await sleep(50);
        const from = st.clock();
        expect(await read()).toBe(`v-${k}`);
        const to = st.clock();
        const s = stamp(k);
        // stamped by this read: at a tick from `from` to `to` (the 16-bit clock does not wrap in a test)
        expect(s, k).not.toBe(written);
        expect(((s - from) & 0xffff) <= ((to - from) & 0xffff), `${k}: ${s} in [${from}, ${to}]`).toBe(true);
      }
    } finally {
      for (const [k, u] of open) unsettled.abandon(k, u);
    }
  });

  // each held-back eviction is its own copy of the key: 65,536 keys of 4,000 bytes grew a 64MB
  // member's heap by 407 MB while its lease lapsed (maxKeyBytes may be 65,535: 4 GB)
  it('hold back at most 16 MiB of key bytes; evictions past that are counted unshipped', { timeout: 60_000 }, async () => {
    const [a] = await twoMembers();
    const ra = a.cluster!.replicas as unknown as { deferred: Array<[number, number, Uint8Array]>; evictionsUnshipped: number; isPrimary(p: number): boolean; records: { partitionOf(k: string): number }; ctx: { meta: { lease: { covers(e: number): boolean } } } };
    const mapId = (a.map('m') as unknown as { id: number }).id;
    const j = (a.store as unknown as { journal: { push(p: number, map: number, src: Uint8Array, off: number, len: number): boolean; pending(): boolean } }).journal;
    const lease = ra.ctx.meta.lease;
    const covers = lease.covers;
    lease.covers = () => false;
    try {
      // evictions of 4,500 keys of 4,000 bytes (17.2 MiB), journalled as the store's evictKey does
      let pushed = 0;
      for (let i = 0; pushed < 4500; i++) {
        const k = `big${i}-`.padEnd(4000, 'k');
        const p = ra.records.partitionOf(k);
        if (!ra.isPrimary(p)) continue;
        if (j.push(p, mapId, Buffer.from(k), 0, 4000)) pushed++;
        else await sleep(10); // the journal is full: its drain (every 5 ms) makes room
      }
      for (let t = 0; t < 100 && j.pending(); t++) await sleep(10);
      const bytes = ra.deferred.reduce((n, [, , key]) => n + key.length, 0);
      expect(bytes).toBeLessThanOrEqual(16 * 1024 * 1024);
      // (one of a partition whose primary changed meanwhile is dropped: counted in neither)
      expect(ra.deferred.length + ra.evictionsUnshipped).toBeLessThanOrEqual(4500);
      expect(ra.evictionsUnshipped).toBeGreaterThan(0);
    } finally {
      lease.covers = covers;
    }
  });

  // 65,536 held-back evictions that became shippable at once went out in one call: 225 ms with the
  // event loop blocked, and as many messages to the copies at once
  it('once the lease covers the partitions again, ship at most 4,096 held-back evictions per call until none is left', { timeout: 60_000 }, async () => {
    const [a] = await twoMembers();
    type R = { deferred: unknown[]; evictionShips: number; shipEvictions(now?: number): number; isPrimary(p: number): boolean; records: { partitionOf(k: string): number }; ctx: { meta: { lease: { covers(e: number): boolean } } } };
    const ra = a.cluster!.replicas as unknown as R;
    const mapId = (a.map('m') as unknown as { id: number }).id;
    const j = (a.store as unknown as { journal: { push(p: number, map: number, src: Uint8Array, off: number, len: number): boolean; pending(): boolean } }).journal;
    const lease = ra.ctx.meta.lease;
    const covers = lease.covers;
    lease.covers = () => false;
    let pushed = 0;
    try {
      for (let i = 0; pushed < 10_000; i++) {
        const k = Buffer.from(`burst${i}`);
        const p = ra.records.partitionOf(k.toString());
        if (!ra.isPrimary(p)) continue;
        if (j.push(p, mapId, k, 0, k.length)) pushed++;
        else await sleep(10);
      }
      for (let t = 0; t < 100 && j.pending(); t++) await sleep(10);
      expect(ra.deferred.length).toBe(pushed);
    } finally {
      lease.covers = covers;
    }
    const ships0 = ra.evictionShips;
    let most = 0;
    const ship = ra.shipEvictions;
    ra.shipEvictions = function (this: R, now?: number) {
      const before = this.evictionShips;
      const n = ship.call(this, now);
      most = Math.max(most, this.evictionShips - before);
      return n;
    };
    try {
      for (let t = 0; t < 200 && ra.deferred.length > 0; t++) await sleep(25);
    } finally {
      delete (ra as { shipEvictions?: unknown }).shipEvictions; // the prototype's again
    }
    expect(ra.deferred.length).toBe(0);
    // all shipped but those of a partition whose primary changed meanwhile (dropped), in calls of 4,096 at most
    expect(ra.evictionShips - ships0).toBeGreaterThan(4096);
    expect(most).toBeLessThanOrEqual(4096);
  });
});
