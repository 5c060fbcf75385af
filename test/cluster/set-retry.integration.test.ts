// Exactly-once sets (issue 10): a SET retried with its request id after a lost reply is not applied
// again, on the primary that applied it nor on the backup that takes over after a kill -9: a replay
// must not undo a later write of another client (the anomaly the nemesis checker found as
// non-linearizable register histories). A fresh request id is applied: the control.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { Transport } from '../../dist/transport/transport.js';
import { SetCall, promiseOf, sendSet } from '../../dist/cluster/fast-ops.js';
import { ValueEncoder } from '../../dist/storage/codec.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'set-retry-test-secret-0123456789abcdef';
/** A SetCall's retry hook that does not retry: the caller sees the first error. */
const noRetry = {
  getRouted: (_p: number, _k: string, e: unknown) => Promise.reject(e),
  setRouted: (_p: number, _k: string, _v: unknown, _x: number, e: unknown) => Promise.reject(e),
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a retried SET carries its request id and applies at most once', () => {
  const members: GridProcess[] = [];
  let lite: Grid;
  let peer: Transport;
  const enc = new ValueEncoder(1 << 20);

  /** One raw FAST SET of key=value under request id `rid` to member `id`; resolves 'ok' or the error code. */
  const rawSet = async (id: string, key: string, value: string, rid: string): Promise<string> => {
    const p = peer.peer(id);
    if (p === undefined) return 'no-link';
    enc.encode(value);
    const c = new SetCall(noRetry, 0, key, value, 0, rid);
    const pr = promiseOf(c);
    if (!sendSet(p, 'retry', key, Buffer.byteLength(key), rid, enc, 0, c)) return 'not-sent';
    return pr.then(
      () => 'ok',
      (e: { code?: string }) => e.code ?? String(e),
    );
  };
  /**
   * Sends the SET to every live member until one (the primary) accepts it — the others refuse it
   * as not theirs; right after a start or a failover the primary may first answer "unavailable"
   * (no lease yet). Exactly one must accept. Returns its id.
   */
  const setAtPrimary = async (key: string, value: string, rid: string): Promise<string> => {
    let answers: Array<readonly [string, string]> = [];
    for (let t = 0; t < 60; t++) {
      answers = await Promise.all(members.filter((m) => m.proc.exitCode === null && m.proc.signalCode === null).map(async (m) => [m.id, await rawSet(m.id, key, value, rid)] as const));
      if (answers.some(([, a]) => a === 'ok')) break;
      await sleep(250);
    }
    const ok = answers.filter(([, a]) => a === 'ok');
    expect(ok.length, JSON.stringify(answers)).toBe(1);
    return ok[0][0];
  };

  beforeAll(async () => {
    members.push(await startGridMember({ backups: 1 }, SECRET));
    members.push(await startGridMember({ seeds: [members[0].url], backups: 1 }, SECRET));
    members.push(await startGridMember({ seeds: [members[0].url], backups: 1 }, SECRET));
    lite = await createGrid({ workers: 1, memory: '16MB', cluster: { lite: true, port: 0, seeds: [members[0].url], secret: SECRET } });
    peer = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `m-${randomBytes(6).toString('hex')}`, log: () => undefined });
    for (const m of members) await peer.connect(m.url);
    // wait until the third member's copies are streamed (no partition moves during the test)
    for (let t = 0; t < 240; t++) {
      const c = lite.stats().cluster!;
      if (c.migrating === 0 && lite.stats().members!.filter((x) => !x.lite && x.primaries > 0).length === 3) break;
      await sleep(250);
    }
  }, 120_000);

  afterAll(async () => {
    await lite?.close();
    await peer?.close();
    for (const m of members) m.proc.kill('SIGKILL');
  });

  it('a replay on the primary and, after a kill -9 of the primary, on the new primary does not undo a later write', async () => {
    const m = lite.map<string>('retry');
    const keys = Array.from({ length: 8 }, (_, i) => `key-${i}`);
    const primaries: string[] = [];
    for (const [i, k] of keys.entries()) primaries.push(await setAtPrimary(k, 'first', `t-${peer.memberId}.${i}`));
    for (const k of keys) expect(await m.get(k)).toBe('first');
    // another client writes after the first attempt
    for (const k of keys) await m.set(k, 'later');
    // the "retry" of each first attempt (same request id) is acknowledged by the primary but not
    // applied again
    for (const [i, k] of keys.entries()) primaries[i] = await setAtPrimary(k, 'first', `t-${peer.memberId}.${i}`);
    expect(await m.getMany(keys)).toEqual(keys.map(() => 'later'));

    // the records travelled with the REPs: kill the primary of key-0; its backup takes over and
    // refuses to re-apply the replay too
    const victim = members.find((x) => x.id === primaries[0])!;
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const moved = keys.filter((_, i) => primaries[i] === victim.id);
    for (const k of moved) {
      const i = keys.indexOf(k);
      expect(await setAtPrimary(k, 'first', `t-${peer.memberId}.${i}`)).not.toBe(victim.id);
    }
    expect(await m.getMany(keys)).toEqual(keys.map(() => 'later'));

    // control: a fresh request id is a new write and applies
    await setAtPrimary(moved[0], 'fresh', `t-${peer.memberId}.fresh`);
    expect(await m.get(moved[0])).toBe('fresh');
  }, 120_000);
});
