// The member's side of grid.cp for attached threads (src/runtime/forward.ts, ForwardServer): an
// attached thread's command arrives in its wire form and is checked as a peer's would be before it
// reaches the member's CP link. A malformed one would otherwise make the leader's packing of its
// whole entry throw (cp-state.ts, cpToWire).
import { BroadcastChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { cpToWire, type CpCommand, type CpResult } from '../../src/cluster/metadata/cp-state.js';
import type { CpLink } from '../../src/cp/cluster.js';
import { ForwardServer } from '../../src/runtime/forward.js';

const channels: BroadcastChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) c.close();
});

/** A ForwardServer over a link that records what it runs, and a client channel to it. */
async function served(): Promise<{ execs: CpCommand[]; ask: (a: unknown[]) => Promise<{ v?: unknown; e?: { code: string } }> }> {
  const execs: CpCommand[] = [];
  const link: CpLink = {
    open: () => Promise.resolve(1),
    exec: (cmd) => {
      execs.push(cmd);
      return Promise.resolve(['v', 7] as CpResult);
    },
    read: () => Promise.resolve(null),
    heartbeat: () => undefined,
  };
  const name = `shardgrid.forward.test.${process.pid}.${Math.random()}`;
  const server = new ForwardServer({ map: () => { throw new Error('no maps here'); }, cpLink: () => link }, name);
  const hello = new BroadcastChannel(name);
  const c = `shardgrid.forward:test-${Math.random()}`;
  const bc = new BroadcastChannel(c);
  channels.push(hello, bc);
  const replies = new Map<number, (r: unknown) => void>();
  const welcomed = new Promise<void>((resolve) => {
    bc.onmessage = (ev) => {
      const m = (ev as MessageEvent).data as { welcome?: boolean; i?: number };
      if (m.welcome === true) resolve();
      else replies.get(m.i as number)?.(m);
    };
  });
  hello.postMessage({ c, tid: 99 });
  await welcomed;
  let i = 0;
  const ask = (a: unknown[]) => new Promise<{ v?: unknown; e?: { code: string } }>((resolve) => {
    const id = ++i;
    replies.set(id, resolve as (r: unknown) => void);
    bc.postMessage({ i: id, cp: true, o: 'exec', a });
  });
  void server;
  return { execs, ask };
}

describe('ForwardServer: an attached thread\'s CP commands', () => {
  it('runs a session command sent in its wire form, and refuses malformed ones and leader-only or open commands before they reach the link', async () => {
    const { execs, ask } = await served();
    const ladd: CpCommand = { c: 'cp', o: 'ladd', s: 1024, q: 3, a: 1, n: 'ctr', d: 2 };
    expect((await ask([cpToWire(ladd), 1000])).e).toBeUndefined();
    expect(execs).toEqual([ladd]);
    const bad: unknown[][] = [
      [ladd, 1000], // an object (the form before protocol 5)
      [[...cpToWire(ladd), 1], 1000], // a field too many
      [cpToWire({ ...ladd, d: 2 ** 60 } as CpCommand), 1000], // out of range
      [[99, 1, 2, 3], 1000], // no such op
      [cpToWire({ c: 'cp', o: 'expire', s: 1024 }), 1000], // leader-only
      [cpToWire({ c: 'cp', o: 'leaseEnd', n: 'L', t: 5 }), 1000],
      [cpToWire({ c: 'cp', o: 'open', k: 'k', h: 'm', t: 1000 }), 1000], // opens have their own call
      [cpToWire(ladd), 'soon'], // waitMs not a number
    ];
    for (const a of bad) expect((await ask(a)).e?.code, JSON.stringify(a)).toBe('GRID_ERR_PROTOCOL');
    expect(execs).toHaveLength(1);
  });
});
