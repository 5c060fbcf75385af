import { createServer, connect as tcpConnect, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { Transport } from '../dist/transport/index.js';

const SECRET = 'advertise-test-secret-0123456789';

/** A TCP relay that records the source address of every connection it accepts. */
async function relay(toPort: () => number): Promise<{ port: number; sources: string[]; server: Server }> {
  const sources: string[] = [];
  const server = createServer((down: Socket) => {
    sources.push(down.remoteAddress ?? '');
    const up = tcpConnect(toPort(), '127.0.0.1');
    down.pipe(up).pipe(down);
    const end = () => { down.destroy(); up.destroy(); };
    down.on('error', end); up.on('error', end); down.on('close', end); up.on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, sources, server };
}

describe('advertise and sourceAddress', () => {
  const closers: Array<() => unknown> = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  /** A transport `id` reached through a relay, advertising the relay's address. */
  async function behindRelay(id: string): Promise<{ a: Transport; r: Awaited<ReturnType<typeof relay>> }> {
    let port = 0;
    const r = await relay(() => port);
    closers.push(() => new Promise((res) => r.server.close(res)));
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: id, advertise: `127.0.0.1:${r.port}` });
    closers.push(() => a.close());
    port = a.boundPort;
    return { a, r };
  }

  it('a member is reached at its advertised address, and dials from its source address', async () => {
    // a is reached through a relay, so it advertises the relay's address (the url peers dial:
    // protocol 3 binds it into the handshake)
    const { a, r } = await behindRelay('a');
    // b dials through the relay, from 127.0.0.7 (any 127/8 address is local on Linux)
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'b', sourceAddress: '127.0.0.7', advertise: 'b.example:7999' });
    closers.push(() => b.close());
    expect(b.url).toBe('ws://b.example:7999');
    expect(await b.connect(`ws://127.0.0.1:${r.port}`)).toBe('a');
    expect(r.sources).toEqual(['127.0.0.7']);
    // a knows b by the address b advertises, not by where the connection came from
    expect(a.urlOf('b')).toBe('ws://b.example:7999');
  });

  it('refuses a dialler that dialled another url than the advertised one (a relay nobody advertised)', async () => {
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'a2' });
    closers.push(() => a.close());
    const port = Number(new URL(a.url).port);
    const r = await relay(() => port);
    closers.push(() => new Promise((res) => r.server.close(res)));
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'b2', log: () => undefined });
    closers.push(() => b.close());
    await expect(b.connect(`ws://127.0.0.1:${r.port}`)).rejects.toMatchObject({ code: 'GRID_ERR_AUTH' });
    expect(a.isConnected('b2')).toBe(false);
    // control: the advertised url itself works
    expect(await b.connect(a.url)).toBe('a2');
  });

  it('a member behind an advertised address also answers at its own bound address (an operator on the host), but not at a relay', async () => {
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'a3', advertise: 'proxy.example:7001' });
    closers.push(() => a.close());
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'b3', log: () => undefined });
    closers.push(() => b.close());
    expect(await b.connect(`ws://127.0.0.1:${a.boundPort}`)).toBe('a3');
  });

  it('probe names the member a url leads to, through a relay, without authenticating or disturbing the open connection; a closed port rejects with GRID_ERR_MEMBER_UNREACHABLE', async () => {
    const { a, r } = await behindRelay('a4');
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'b4' });
    closers.push(() => b.close());
    expect(await a.connect(b.url)).toBe('b4');
    a.handle('echo', (x) => x);
    expect(await b.probe(a.url, 2000)).toBe('a4');
    expect(r.sources.length).toBe(1); // it went through the relay
    // the link b already had to a is still the one in use
    expect(await b.request('a4', 'echo', 'still open')).toBe('still open');
    expect(b.peers()).toEqual(['a4']);
    expect(a.peers()).toEqual(['b4']);
    const closed = r.port; // nothing listens at a's bound port + relay once the relay is closed
    await new Promise((res) => r.server.close(res));
    await expect(b.probe(`ws://127.0.0.1:${closed}`, 2000)).rejects.toMatchObject({ code: 'GRID_ERR_MEMBER_UNREACHABLE' });
    await expect(b.probe('http://x', 2000)).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
  });

  // urls reach connect and probe from peers (HELLOs, gossip, answers): one with a path or
  // credentials made a member GET that path, with Basic auth, from any HTTP server
  it('connect and probe refuse a url that is not ws(s)://host:port with GRID_ERR_INVALID_ARGUMENT, sending nothing', async () => {
    const requests: string[] = [];
    const http = (await import('node:http')).createServer((req, res) => {
      requests.push(`${req.url} ${req.headers.authorization ?? ''}`);
      res.end();
    });
    http.on('upgrade', (req, socket) => {
      requests.push(`${req.url} ${req.headers.authorization ?? ''}`);
      socket.destroy();
    });
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    closers.push(() => new Promise((res) => http.close(res)));
    const port = (http.address() as { port: number }).port;
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'b5', log: () => undefined });
    closers.push(() => b.close());
    const bad = [`ws://user:pw@127.0.0.1:${port}`, `ws://127.0.0.1:${port}/latest/meta-data/iam?action=delete`, `ws://127.0.0.1:${port}/`, 'ws://127.0.0.1', `wss://127.0.0.1:${port}#x`, `WS://127.0.0.1:${port}`];
    for (const url of bad) {
      for (const dial of [() => b.connect(url, 1000), () => b.probe(url, 1000)]) {
        const err = await dial().catch((e: unknown) => e);
        expect(err).toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
        expect((err as Error).message).toMatch(/^(connect|probe): url must be a ws:\/\/ or wss:\/\/ url of a host and a port/);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(requests).toEqual([]);
    // control: the same server at a member url is dialled (and fails: it is no member)
    await expect(b.connect(`ws://127.0.0.1:${port}`, 1000)).rejects.toBeDefined();
    expect(requests).toEqual(['/ ']);
  });

  it('refuses a malformed advertise or source address with a typed error', async () => {
    await expect(Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'c', advertise: 'nohostport' })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
    await expect(Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'c', sourceAddress: 'localhost' })).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
  });
});
