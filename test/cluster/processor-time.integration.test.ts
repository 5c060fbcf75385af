// An entry processor that never returns, called on a member (README, "Compute next to the data":
// compute.processorTimeoutMs). It ran on the member's main thread: the member served nothing else,
// was removed, and the call, retried on the partition's next primary, hung that member too (the
// caller got GRID_ERR_MEMBER_UNREACHABLE after 17 s). Now it runs on the member's compute pool and
// is stopped at the limit: GRID_ERR_TIMEOUT, no failover, the members keep serving and stay members.
// Also: a compute still applies once when its request is sent twice, and reaches the backup.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, fetchClusterStatus, TimeoutError, type Grid } from '../../dist/index.js';
import { decodeMsgpack, encodeMsgpack } from '../../dist/storage/codec.js';
import { Transport } from '../../dist/transport/transport.js';
import { ask, startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'processor-time-test-secret-0123456789';
const PROCS = { modules: { procs: new URL('../fixtures/compute-procs.mjs', import.meta.url) } };
const proc = (name: string) => ({ module: 'procs', name });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('entry processor time limit in a cluster', () => {
  const kids: GridProcess[] = [];
  let lite: Grid; // default compute.processorTimeoutMs
  let peer: Transport; // sends raw grid.op requests, as another member would

  const ownersOf = (key: string): readonly string[] => {
    const rep = lite.cluster!.replicas;
    return rep.table!.owners[rep.records.partitionOf(key)];
  };
  const kid = (id: string) => kids.find((k) => k.id === id)!;
  /** `n` keys whose primary is `member` and whose partition is not `notIn`'s. */
  const keysOn = (member: string, n: number, tag: string, notIn?: string): string[] => {
    const rep = lite.cluster!.replicas;
    const avoid = notIn === undefined ? -1 : rep.records.partitionOf(notIn);
    const out: string[] = [];
    for (let i = 0; out.length < n; i++) {
      const k = `${tag}-${i}`;
      if (ownersOf(k)[0] === member && rep.records.partitionOf(k) !== avoid) out.push(k);
    }
    return out;
  };
  const membersView = (g: Grid) => g.stats().members!.map((x) => `${x.id}:${x.status}`).sort();
  /** A raw compute request to the key's primary; the result decoded. */
  const cmp = async (map: string, key: string, name: string, a: unknown, more: Record<string, unknown>) => {
    const to = await peer.connect(kid(ownersOf(key)[0]).url, 10_000);
    return decodeMsgpack((await peer.request(to, 'grid.op', { m: map, o: 'cmp', k: key, f: proc(name), a: encodeMsgpack(a), ...more }, 20_000)) as Uint8Array);
  };

  beforeAll(async () => {
    kids.push(await startGridMember({ backups: 1 }, SECRET, 60_000));
    for (let i = 0; i < 2; i++) kids.push(await startGridMember({ backups: 1, seeds: [kids[0].url] }, SECRET, 60_000));
    lite = await createGrid({ workers: 1, memory: '16MB', compute: PROCS, cluster: { host: '127.0.0.1', port: 0, seeds: [kids[0].url], secret: SECRET, lite: true } });
    peer = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `p-${randomBytes(4).toString('hex')}`, log: () => undefined });
    for (let t = 0; t < 240; t++) {
      const tb = lite.cluster!.currentTable;
      if (tb !== undefined && tb.pending.every((l) => l.length === 0) && new Set(tb.owners.map((o) => o[0])).size === 3 && lite.stats().cluster!.migrating === 0) break;
      await sleep(250);
    }
  }, 120_000);

  afterAll(async () => {
    await peer?.close();
    await lite?.close();
    for (const k of kids) k.proc.kill('SIGKILL');
  });

  it('an endless processor fails with GRID_ERR_TIMEOUT; every member kept serving and is still a member; the key is unchanged on primary and backup', { timeout: 60_000 }, async () => {
    const m = lite.map<unknown>('pt');
    const stuck = 'stuck';
    const [primary, backup] = ownersOf(stuck);
    await m.set(stuck, 'before');
    const others = kids.flatMap((k) => keysOn(k.id, 4, `o-${k.id}`, stuck));
    await m.setMany(others.map((k) => [k, 0]));
    const version = lite.stats().cluster!.tableVersion;
    const view = membersView(lite);
    expect(view.filter((x) => x.endsWith(':alive'))).toHaveLength(4);

    const t0 = Date.now();
    let done = false;
    const call = m.compute(stuck, proc('forever')).then(
      () => undefined,
      (e: unknown) => e as TimeoutError,
    ).finally(() => (done = true));
    // other keys on every member (the runaway's member included) are written and read meanwhile
    const served = new Map<string, number>(kids.map((k) => [k.id, 0]));
    // a compute of another key of that member, with a longer limit, queued behind the runaway on
    // its pool thread: it runs once the runaway's thread is replaced
    const queued = cmp('pt', keysOn(primary, 1, 'queued', stuck)[0], 'increment', 7, { t: 15_000 });
    for (let round = 1; !done; round++) {
      for (const k of others) {
        await m.set(k, round);
        expect(await m.get(k)).toBe(round);
        if (!done) served.set(ownersOf(k)[0], served.get(ownersOf(k)[0])! + 1);
      }
    }
    const e = await call;
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e!.code).toBe('GRID_ERR_TIMEOUT');
    expect(e!.data).toMatchObject({ module: 'procs', export: 'forever', timeoutMs: 2000 });
    expect(Date.now() - t0).toBeLessThan(2000 + 8000);
    for (const [id, n] of served) expect(n, `operations ${id} served while the processor ran`).toBeGreaterThan(4);
    expect(await queued).toBe(7);

    // no removal, no new table (no failover), every member alive in its own view and ours
    expect(lite.stats().cluster!.tableVersion).toBe(version);
    expect(membersView(lite)).toEqual(view);
    expect(ownersOf(stuck)[0]).toBe(primary);
    const st = await fetchClusterStatus(kid(primary).url, SECRET);
    expect(st.tableVersion).toBe(version);
    expect(st.members.map((x) => `${x.id}:${x.status}`).sort()).toEqual(view);

    // the key is unchanged on its primary and its backup copy
    expect(await m.get(stuck)).toBe('before');
    expect(await ask(kid(primary), { cmd: 'copy', map: 'pt', key: stuck }, ['copy'])).toMatchObject({ present: true, value: 'before' });
    expect(await ask(kid(backup), { cmd: 'copy', map: 'pt', key: stuck }, ['copy'])).toMatchObject({ present: true, value: 'before' });
    // the member computes again at once (its pool thread was replaced), the stopped key included
    expect(await m.compute(keysOn(primary, 1, 'again', stuck)[0], proc('increment'), 3)).toBe(3);
    expect(await m.compute(stuck, proc('replace'), 'after')).toBe('before');
    expect(await ask(kid(backup), { cmd: 'copy', map: 'pt', key: stuck }, ['copy'])).toMatchObject({ value: 'after' });
  });

  it('a compute request sent twice under one request id applies once, one after the other and both at once, its write reaches the backup, a caller without a limit runs it inline, and 64 computes of one key at once each apply once', { timeout: 30_000 }, async () => {
    const [k1, k2] = ['once-a', 'once-b'];
    const once = (key: string, n: number, name: string, a: unknown) => cmp('pt-once', key, name, a, { r: `${peer.memberId}.${n}` });
    expect(await once(k1, 1, 'increment', 5)).toBe(5);
    expect(await once(k1, 1, 'increment', 5)).toBe(5); // a retry: answered from the record
    expect(await Promise.all([once(k2, 2, 'spin', 300), once(k2, 2, 'spin', 300)])).toEqual([1, 1]);
    const m = lite.map<number>('pt-once');
    expect(await m.getMany([k1, k2])).toEqual([5, 1]);
    for (const [k, v] of [[k1, 5], [k2, 1]] as const) {
      expect(await ask(kid(ownersOf(k)[1]), { cmd: 'copy', map: 'pt-once', key: k }, ['copy'])).toMatchObject({ value: v });
    }
    // a caller with no limit (processorTimeoutMs 0, t: 0): inline on the member's main thread, as before
    expect(await cmp('pt-once', 'inline', 'increment', 4, { r: `${peer.memberId}.3`, t: 0 })).toBe(4);
    expect(await cmp('pt-once', 'inline', 'whereAmI', undefined, { t: 0 })).toBe(0); // the member's main thread
    expect(await cmp('pt-once', 'inline', 'whereAmI', undefined, {})).not.toBe(0); // a pool thread
    expect(await ask(kid(ownersOf('inline')[1]), { cmd: 'copy', map: 'pt-once', key: 'inline' }, ['copy'])).toMatchObject({ value: 4 });
    // 64 computes of one key at once: a pool thread is handed many, each after a write it handed
    // over with the partition lock (a blocking wait for that lock on the same thread never ended)
    const results = await Promise.all(Array.from({ length: 64 }, () => m.compute('hot', proc('increment'), 1)));
    expect(results.sort((a, b) => a - b)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
  });
});
