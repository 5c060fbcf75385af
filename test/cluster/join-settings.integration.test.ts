// Options every member of a cluster must share (found by trying the CLI as a user): a member
// started with another --partitions count used to be admitted — the log added it, the leader
// planned partitions onto it and streamed snapshots it refused as malformed (its keys hash to
// other partitions), and the joiner itself failed 15 s later with an unexplained
// GRID_ERR_TIMEOUT. A data member with another --backups joined silently and ran with the
// cluster's. Now a seed refuses both at once with GRID_ERR_INVALID_OPTION naming the values, the
// refused member never appears in the cluster, and a lite member (which keeps no copies) may
// differ in backups.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { closedPort } from '../fixtures/status-member.js';

const SECRET = 'join-settings-test-secret-0123456789abcd';

describe('joining with options the cluster does not share', () => {
  let first: Grid;
  let url: string;
  const others: Grid[] = [];

  beforeAll(async () => {
    first = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1 } });
    url = first.stats().cluster!.url;
  }, 60_000);

  afterAll(async () => {
    for (const g of others) await g.close();
    await first?.close();
  });

  const join = (o: { partitions?: number; backups?: number; lite?: boolean }) =>
    createGrid({
      workers: 1,
      memory: '16MB',
      ...(o.partitions === undefined ? {} : { partitions: o.partitions }),
      cluster: { host: '127.0.0.1', port: 0, seeds: [url], secret: SECRET, backups: o.backups ?? 1, lite: o.lite ?? false },
    });

  it('a data member with another partition count is refused at once, with both counts', { timeout: 30_000 }, async () => {
    const t0 = Date.now();
    const err = await join({ partitions: 100 }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
    expect((err as Error).message).toMatch(/271 partitions.*100/);
    // refused by the seed's reply, not by a timeout (the old failure took 15 s)
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('so is a lite member with another partition count (it would route keys to other partitions)', { timeout: 30_000 }, async () => {
    await expect(join({ partitions: 100, lite: true })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
  });

  it('a data member with another backup count is refused; a lite member may differ', { timeout: 60_000 }, async () => {
    const err = await join({ backups: 2 }).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
    expect((err as Error).message).toMatch(/keeps 1 backup.*started with 2/);
    const lite = await join({ backups: 2, lite: true });
    others.push(lite);
    expect(lite.stats().cluster!.lite).toBe(true);
  });

  // A lite member's table comes from the leader's pushes: one that missed the push of the table
  // that ended a migration kept the older table in an idle cluster for good, and its status and
  // metrics said partitions were migrating when none were (a possible cause of a fresh idle
  // cluster's status showing "2 partitions migrating"). The stale table is made by hand here.
  it('a lite member left with a table whose copies were still in flight takes the newer one from a data member', { timeout: 30_000 }, async () => {
    const lite = await join({ lite: true });
    others.push(lite);
    type Internals = { currentTable: { version: number; owners: string[][]; pending: string[][]; epochs: number[]; lost: number[] }; replicas: { table: unknown }; meta: { liteTable: unknown } };
    const node = lite.cluster as unknown as Internals;
    const t = node.currentTable;
    expect(t.version).toBe(first.stats().cluster!.tableVersion);
    // the table before: the same owners, partition 0 still streaming a copy to a member
    const stale = { ...t, version: t.version - 1, pending: t.pending.map((l, p) => (p === 0 ? ['m-gone'] : l)) };
    node.replicas.table = stale;
    node.meta.liteTable = stale;
    expect(lite.stats().cluster!.migrating).toBe(1);
    for (let i = 0; i < 100 && lite.stats().cluster!.migrating !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(lite.stats().cluster!.migrating).toBe(0);
    expect(lite.stats().cluster!.tableVersion).toBe(first.stats().cluster!.tableVersion);
  });

  // A lite member owns no partitions but allocated the store of options.memory all the same: at
  // the default 256MB a heap of 9,011,200 bytes (~8.6MB) and an access map of 8,095,744, 18MB with
  // its control block. Now its store has no pages, and its operations (its own and an attached
  // thread's) still work, routed to the data member; nothing is stored or counted in its memory.
  it('a lite member allocates no store pages (only the control block), and its operations and an attached thread\'s are all routed', { timeout: 30_000 }, async () => {
    const lite = await createGrid({ workers: 1, cluster: { host: '127.0.0.1', port: 0, seeds: [url], secret: SECRET, lite: true } });
    others.push(lite);
    const b = lite.handle.buffers;
    const bytes = b.control.byteLength + b.heap.byteLength + b.access.byteLength;
    console.log(`lite member store: ${bytes} bytes (control ${b.control.byteLength}, heap ${b.heap.byteLength}, access ${b.access.byteLength})`);
    expect(b.heap.byteLength).toBe(0);
    expect(b.heap.maxByteLength).toBe(0);
    expect(b.access.byteLength).toBe(0);
    expect(bytes).toBeLessThan(1024 * 1024);
    const m = lite.map<number>('lite-routed');
    for (let i = 0; i < 100; i++) await m.set(`k${i}`, i);
    expect(await m.getMany(['k0', 'k99', 'nope'])).toEqual([0, 99, undefined]);
    const { Worker } = await import('node:worker_threads');
    const code = `import { attachGrid } from ${JSON.stringify(new URL('../../dist/index.js', import.meta.url).href)};
      import { parentPort, workerData } from 'node:worker_threads';
      const g = await attachGrid(workerData);
      const m = g.map('lite-routed');
      await m.set('from-thread', 7);
      parentPort.postMessage([await m.get('from-thread'), await m.get('k5')]);
      await g.close();`;
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { workerData: lite.handle });
    expect(await new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject)))).toEqual([7, 5]);
    await new Promise((r) => w.once('exit', r));
    expect(await m.get('from-thread')).toBe(7);
    const st = lite.stats();
    expect(st.entries).toBe(0);
    expect(st.bytesLimit).toBe(bytes); // what it holds, not the 256MB of options.memory
    expect(st.bytesUsed).toBe(bytes);
    expect(await first.map('lite-routed').get('k99')).toBe(99);
  });

  // options.cluster.advertise to a port nothing listens on joined all the same (the joiner's own
  // connections carried everything at first) and the cluster failed to reach it later. Now the
  // seed dials the joiner back at that url before it joins.
  it('a member advertising a url that does not lead to it is refused before it joins, naming options.cluster.advertise and the url; one behind a relay joins', { timeout: 30_000 }, async () => {
    const { createServer, connect } = await import('node:net');
    const joined: string[] = [];
    const onJoin = (m: { id: string }) => joined.push(m.id);
    first.on('member-joined', onJoin);
    const relay = createServer((down) => {
      const up = connect(target, '127.0.0.1');
      down.pipe(up).pipe(down);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    let target = 0;
    // another member's address: a bare transport that names itself in the handshake
    const { Transport } = await import('../../dist/transport/index.js');
    const other = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'm-0123456789ab', log: () => undefined });
    try {
      const nobody = await closedPort();
      for (const advertise of [`127.0.0.1:${nobody}`, other.url.slice('ws://'.length)]) {
        const err = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, advertise, seeds: [url], secret: SECRET, backups: 1 } }).then(
          (g) => g.close().then(() => 'joined'),
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION', data: { option: 'options.cluster.advertise', url: `ws://${advertise}` } });
        expect((err as Error).message).toContain(`options.cluster.advertise: member ${first.stats().cluster!.memberId} (seed ${url}) dialled this member at its advertised url ws://${advertise} and `);
        expect((err as Error).message).toMatch(advertise.endsWith(`:${nobody}`) ? /ECONNREFUSED/ : /it leads to member m-0123456789ab, not to this one/);
      }
      expect(joined).toEqual([]);
      // control: behind a relay that leads to it, a member joins through the same check
      target = await closedPort();
      await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
      const g = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: target, advertise: `127.0.0.1:${(relay.address() as { port: number }).port}`, seeds: [url], secret: SECRET, backups: 1, lite: true } });
      others.push(g);
      expect(first.stats().members!.map((m) => m.id)).toContain(g.stats().cluster!.memberId);
    } finally {
      first.off('member-joined', onJoin);
      relay.close();
      await other.close();
    }
  });

  // with every seed too busy to dial it back, a joiner joined unchecked without a word, and an
  // advertised url that does not lead to it showed only when the cluster failed to reach it
  it('a member whose every seed is too busy to dial it back joins unchecked, and warns that its advertised url was not checked', { timeout: 30_000 }, async () => {
    const t = (first.cluster as unknown as { transport: { handle(type: string, fn: unknown): void; handlers: Map<string, unknown> } }).transport;
    const reach = t.handlers.get('grid.reach?');
    t.handle('grid.reach?', () => ({ error: 'this member is busy dialling other members back', busy: true }));
    const logs: string[] = [];
    const nobody = await closedPort();
    try {
      const g = await createGrid({
        workers: 1,
        memory: '16MB',
        logger: { debug() {}, info() {}, error() {}, warn: (a: unknown, b?: string) => logs.push(typeof a === 'string' ? a : String(b)) },
        cluster: { host: '127.0.0.1', port: 0, advertise: `127.0.0.1:${nobody}`, seeds: [url], secret: SECRET, lite: true },
      });
      await g.close(); // nothing can dial it: gone before the cluster tries
      const warned = logs.filter((l) => l.includes('was not checked'));
      expect(warned).toHaveLength(1);
      expect(warned[0]).toContain(`options.cluster.advertise: no seed dialled this member back at its advertised url ws://127.0.0.1:${nobody}, so it was not checked (${url}: busy dialling other members back)`);
    } finally {
      t.handle('grid.reach?', reach);
    }
  });

  // grid.reach? makes a member dial out: a peer that asks many times at once gets one dial
  it('a peer asking to be dialled back many times at once gets one dial at a time', { timeout: 30_000 }, async () => {
    // where the asker says it listens: a port that accepts and never answers (each dial waits out its 2 s)
    const sink = await tcpSink(false);
    const { Transport } = await import('../../dist/transport/index.js');
    const asker = await Transport.listen({ host: '127.0.0.1', port: 0, advertise: sink.at, secret: SECRET, memberId: 'm-asker0000000', log: () => undefined });
    try {
      const peer = await asker.connect(url, 5000);
      const answers = await Promise.all(Array.from({ length: 20 }, () => asker.request<{ id?: string; error?: string }>(peer, 'grid.reach?', null, 5000)));
      const busy = answers.filter((a) => a.error === 'a dial back to it is already under way').length;
      expect(busy).toBe(19);
      expect(answers.filter((a) => a.error !== undefined && /GRID_ERR_TIMEOUT/.test(a.error))).toHaveLength(1);
      expect(sink.dials()).toBe(1);
    } finally {
      await asker.close();
      sink.server.close();
    }
  });

  // a secret holder asking under 12 ids at once made 12 dials at once, and one asking back to back
  // made ~1,500 dials a second at the url its HELLO named (a third party's)
  it('peers asking to be dialled back under many ids, or back to back, get a bounded number of dials; the rest are told the member is busy', { timeout: 30_000 }, async () => {
    const { Transport } = await import('../../dist/transport/index.js');
    // accepts and never answers: each dial waits out its 2 s
    const sink = await tcpSink(false);
    // hangs up at once: each dial ends at once
    const quick = await tcpSink(true);
    const askers = [];
    try {
      for (let i = 0; i < 12; i++) askers.push(await Transport.listen({ host: '127.0.0.1', port: 0, advertise: sink.at, secret: SECRET, memberId: `m-many${String(i).padStart(8, '0')}`, log: () => undefined }));
      const peers: string[] = [];
      for (const a of askers) peers.push(await a.connect(url, 5000));
      const answers = await Promise.all(askers.map((a, i) => a.request<{ id?: string; error?: string; busy?: boolean }>(peers[i], 'grid.reach?', null, 5000)));
      expect(answers.filter((a) => a.busy === true)).toHaveLength(8);
      expect(answers.filter((a) => a.error !== undefined && /GRID_ERR_TIMEOUT/.test(a.error))).toHaveLength(4);
      expect(sink.dials()).toBe(4);
      const fast = await Transport.listen({ host: '127.0.0.1', port: 0, advertise: quick.at, secret: SECRET, memberId: 'm-backtoback00', log: () => undefined });
      askers.push(fast);
      const peer = await fast.connect(url, 5000);
      const seq: Array<{ busy?: boolean }> = [];
      const t0 = performance.now();
      for (let i = 0; i < 60; i++) seq.push(await fast.request<{ busy?: boolean }>(peer, 'grid.reach?', null, 5000));
      // 16 dials started per 2 s window at most, over however many windows the 60 asks spanned
      const windows = Math.ceil((performance.now() - t0) / 2000) + 1;
      expect(quick.dials()).toBeGreaterThan(0);
      expect(quick.dials()).toBeLessThanOrEqual(16 * windows);
      expect(seq.filter((a) => a.busy === true).length).toBe(60 - quick.dials());
    } finally {
      for (const a of askers) await a.close();
      sink.server.close();
      quick.server.close();
    }
  });

  // a HELLO's url is any string: a secret holder's made the member GET a path of its choice, with
  // credentials, from any HTTP server (and learn the status code); the membership takes host:port only
  it('a peer whose HELLO names a url with a path or credentials is not dialled back there', { timeout: 30_000 }, async () => {
    const { Transport } = await import('../../dist/transport/index.js');
    const { seen, port, http } = await httpSink();
    const asker = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'm-pathasker000', log: () => undefined });
    try {
      (asker as unknown as { url: string }).url = `ws://user:pw@127.0.0.1:${port}/latest/meta-data/iam?action=delete`;
      const peer = await asker.connect(url, 5000);
      const answer = await asker.request<{ id?: string; error?: string }>(peer, 'grid.reach?', null, 5000);
      expect(answer.error).toMatch(/is not a ws:\/\/ or wss:\/\/ url of a host and a port/);
      expect(seen).toEqual([]);
    } finally {
      await asker.close();
      http.close();
    }
  });

  // the leader proposed such a join all the same (an entry every member stored and ignored), and
  // the joiner got GRID_ERR_TIMEOUT, "the join was not committed in time"
  it('a join from a peer whose HELLO names a url with a path or credentials is refused at once', { timeout: 30_000 }, async () => {
    const { Transport } = await import('../../dist/transport/index.js');
    const asker = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'm-badjoinurl0', log: () => undefined });
    try {
      (asker as unknown as { url: string }).url = 'ws://user:pw@127.0.0.1:1/latest/meta-data';
      const peer = await asker.connect(url, 5000);
      const err = await asker.request(peer, 'meta.join', null, 2000).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'GRID_ERR_PROTOCOL' });
      expect((err as Error).message).toContain('is not ws:// or wss:// and host:port');
    } finally {
      await asker.close();
    }
  });

  // a joiner dialled whatever url a seed's "not the leader" answer named, paths and credentials too
  it('a joiner does not dial the url of a seed\'s not-leader answer unless it is a member url', { timeout: 30_000 }, async () => {
    const { Transport } = await import('../../dist/transport/index.js');
    const { NotLeaderError } = await import('../../dist/errors.js');
    const { seen, port, http } = await httpSink();
    const seed = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'm-notleader000', log: () => undefined });
    try {
      seed.handle('meta.join', () => {
        throw new NotLeaderError('not the leader', { leader: 'm-elsewhere000', url: `ws://user:pw@127.0.0.1:${port}/latest/meta-data/iam?action=delete` });
      });
      // the join of a member, driven against that seed alone
      const node = first.cluster as unknown as { transport: { connect(u: string, ms: number): Promise<string> }; meta: { join(ids: () => string[], ms: number): Promise<void> } };
      const id = await node.transport.connect(seed.url, 5000);
      await expect(node.meta.join(() => [id], 1500)).rejects.toMatchObject({ code: 'GRID_ERR_TIMEOUT' });
      expect(seen).toEqual([]);
    } finally {
      await seed.close();
      http.close();
    }
  });

  // a seed's answer went into the joiner's start error as it came (500,000 characters, terminal
  // escapes), and so did the id a probed listener named, unauthenticated, into a joiner's warning
  it('a seed\'s answer and a probed listener\'s id reach the start error and the warnings escaped and bounded', { timeout: 30_000 }, async () => {
    const { Transport } = await import('../../dist/transport/index.js');
    const { encodeChallenge } = await import('../../dist/transport/wire.js');
    const { WebSocketServer } = await import('ws');
    const hostile = '\x1b[2J\x1b]0;x\x07\r\nfake line ';
    const seed = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'm-hostileseed0', log: () => undefined });
    // where the founder below advertises: a listener that names itself with escapes, then hangs up
    const liar = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    liar.on('connection', (ws) => ws.once('message', () => ws.send(encodeChallenge(`${hostile}m`, new Uint8Array(32)))));
    await new Promise<void>((r) => liar.once('listening', () => r()));
    try {
      for (const answer of [{ error: hostile + 'A'.repeat(500_000) }, { id: hostile + 'B'.repeat(200) }]) {
        seed.handle('grid.reach?', () => answer);
        const err = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, advertise: '127.0.0.1:1', seeds: [seed.url], secret: SECRET, backups: 1 } }).then(
          (g) => g.close().then(() => 'joined'),
          (e: unknown) => e,
        );
        expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
        const m = (err as Error).message;
        expect(m.length).toBeLessThan(2000);
        expect(m).not.toMatch(/[\x00-\x1f]/);
        expect(m).toContain('\\x1b[2J');
      }
      const logs: string[] = [];
      const founder = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, advertise: `127.0.0.1:${(liar.address() as { port: number }).port}`, secret: SECRET, backups: 1 } });
      others.push(founder);
      const joiner = await createGrid({ workers: 1, memory: '16MB', logger: { debug() {}, info() {}, error() {}, warn: (a: unknown, b?: string) => logs.push(typeof a === 'string' ? a : String(b)) }, cluster: { host: '127.0.0.1', port: 0, seeds: [founder.cluster!.boundUrl], secret: SECRET, lite: true } });
      others.push(joiner);
      for (let i = 0; i < 100 && !logs.some((l) => l.includes('it leads to member')); i++) await new Promise((r) => setTimeout(r, 50));
      const warned = logs.find((l) => l.includes('it leads to member'));
      expect(warned).toContain('it leads to member \\x1b[2J');
      expect(warned).not.toMatch(/[\x00-\x1f]/);
    } finally {
      await seed.close();
      liar.close();
    }
  });

  // A founding member has no seed to dial it back: its advertise is checked by the members that
  // join it, which warn, and tell it so that it warns too.
  it('a founding member advertising a url that does not lead to it is warned about by a joiner, and warns itself', { timeout: 30_000 }, async () => {
    const nobody = await closedPort();
    const logs = { founder: [] as string[], joiner: [] as string[] };
    const logger = (into: string[]) => ({ debug() {}, info() {}, error() {}, warn: (a: unknown, b?: string) => into.push(typeof a === 'string' ? a : String(b)) });
    const founder = await createGrid({ workers: 1, memory: '16MB', logger: logger(logs.founder), cluster: { host: '127.0.0.1', port: 0, advertise: `127.0.0.1:${nobody}`, secret: SECRET, backups: 1 } });
    others.push(founder);
    const joiner = await createGrid({ workers: 1, memory: '16MB', logger: logger(logs.joiner), cluster: { host: '127.0.0.1', port: 0, seeds: [founder.cluster!.boundUrl], secret: SECRET, lite: true } });
    others.push(joiner);
    const fid = founder.stats().cluster!.memberId;
    for (let i = 0; i < 100 && (logs.joiner.length === 0 || logs.founder.length === 0); i++) await new Promise((r) => setTimeout(r, 50));
    expect(logs.joiner.find((l) => l.includes(`member ${fid} advertises ws://127.0.0.1:${nobody}, but this member cannot dial it there (GRID_ERR_MEMBER_UNREACHABLE`))).toBeDefined();
    expect(logs.founder.find((l) => l.includes(`member ${joiner.stats().cluster!.memberId} cannot dial this member at its advertised url ws://127.0.0.1:${nobody} (GRID_ERR_MEMBER_UNREACHABLE`))).toBeDefined();
    // the joiner itself advertises where it listens: nobody warns about it
    expect(logs.joiner.filter((l) => l.includes('cannot dial this member'))).toEqual([]);
  });

  it('a member whose RESP or metrics port is taken fails before it joins (it used to join, then leave)', { timeout: 30_000 }, async () => {
    const { createServer } = await import('node:net');
    const held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', () => r()));
    const port = (held.address() as { port: number }).port;
    const joined: string[] = [];
    const onJoin = (m: { id: string }) => joined.push(m.id);
    first.on('member-joined', onJoin);
    try {
      for (const extra of [{ resp: { port } }, { metrics: { port } }]) {
        const err = await createGrid({ workers: 1, memory: '16MB', ...extra, cluster: { host: '127.0.0.1', port: 0, seeds: [url], secret: SECRET, backups: 1 } }).then(() => undefined, (e: unknown) => e);
        expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
        expect((err as Error).message).toContain('EADDRINUSE');
      }
      // nobody joined, not even for a moment
      await new Promise((r) => setTimeout(r, 500));
      expect(joined).toEqual([]);
    } finally {
      first.off('member-joined', onJoin);
      held.close();
    }
  });

  it('the refused members never became members, and nothing is left migrating', { timeout: 30_000 }, async () => {
    const st = first.stats();
    expect(st.members!.filter((m) => !m.lite).map((m) => m.id)).toEqual([st.cluster!.memberId]);
    expect(st.cluster!.migrating).toBe(0);
    // and the one member still serves every key
    const m = first.map('after');
    for (let i = 0; i < 200; i++) await m.set(`k${i}`, i);
    expect(await m.get('k199')).toBe(199);
  });

  it('a member with the same options still joins', { timeout: 60_000 }, async () => {
    const g = await join({});
    others.push(g);
    expect(g.stats().members!.filter((m) => !m.lite).length).toBe(2);
  });

  it('a member whose only seed is itself is refused at once; a seed list that also names it (the same list on every member) joins through the others', { timeout: 60_000 }, async () => {
    const { createServer } = await import('node:net');
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const self = `ws://127.0.0.1:${port}`;
    const t0 = Date.now();
    const err = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port, seeds: [self], secret: SECRET, backups: 1 } }).then(
      (g) => g.close().then(() => 'joined'),
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_OPTION' });
    expect((err as Error).message).toMatch(/^options\.cluster\.seeds names only this member itself/);
    expect(Date.now() - t0).toBeLessThan(5000); // it used to wait 15 s for an admission nobody could give
    const g = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port, seeds: [self, url], secret: SECRET, backups: 1 } });
    others.push(g);
    expect(first.stats().members!.map((m) => m.id)).toContain(g.stats().cluster!.memberId);
  });
});

describe('createGrid options.signal', () => {
  it('an abort while the member joins stops it at once with GRID_ERR_CLOSED, closing what it started; an aborted signal starts nothing', { timeout: 20_000 }, async () => {
    const { createServer } = await import('node:net');
    const controller = new AbortController();
    const sockets: import('node:net').Socket[] = [];
    const seed = createServer((sock) => {
      sockets.push(sock);
      controller.abort(); // the member is dialling: it is in its join
    });
    await new Promise<void>((r) => seed.listen(0, '127.0.0.1', () => r()));
    try {
      const seeds = [`ws://127.0.0.1:${(seed.address() as { port: number }).port}`];
      const t0 = Date.now();
      const err = await createGrid({ workers: 1, memory: '16MB', signal: controller.signal, cluster: { host: '127.0.0.1', port: 0, seeds, secret: SECRET } }).then(
        (g) => g.close().then(() => 'started'),
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ code: 'GRID_ERR_CLOSED' });
      expect((err as Error).message).toContain('aborted (options.signal)');
      expect(Date.now() - t0).toBeLessThan(3000); // the join alone waits 5 s for this seed
      await expect(createGrid({ workers: 1, memory: '16MB', signal: controller.signal, cluster: { port: 0, seeds, secret: SECRET } })).rejects.toMatchObject({ code: 'GRID_ERR_CLOSED' });
      await expect(createGrid({ signal: 'stop' as never })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_OPTION', message: "options.signal must be an AbortSignal (got the string 'stop')" });
    } finally {
      for (const s of sockets) s.destroy();
      seed.close();
    }
  });
});

/** An HTTP server on a free loopback port that records every request it gets ("METHOD url"): where a url with a path must not lead a member. */
async function httpSink(): Promise<{ seen: string[]; port: number; http: import('node:http').Server }> {
  const { createServer } = await import('node:http');
  const seen: string[] = [];
  const http = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    res.end('internal data');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { seen, port: (http.address() as { port: number }).port, http };
}

/** A TCP server on a free loopback port (`at`: its host:port) that counts the connections it gets; `hangUp`: it closes each at once, else it holds them and never answers. */
async function tcpSink(hangUp: boolean): Promise<{ server: import('node:net').Server; dials: () => number; at: string }> {
  const { createServer } = await import('node:net');
  let dials = 0;
  const server = createServer((s) => {
    dials++;
    if (hangUp) s.destroy();
    else s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, dials: () => dials, at: `127.0.0.1:${(server.address() as { port: number }).port}` };
}
