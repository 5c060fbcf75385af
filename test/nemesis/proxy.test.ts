// The fault harness's link proxy (test/nemesis/proxy.mjs), on raw TCP: a server that records
// what it receives and echoes it, behind the proxy of node 'b'; clients dial from 127.0.0.x.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM JavaScript without type declarations
import { Network } from './proxy.mjs';

const A_IP = '127.0.0.21';
const C_IP = '127.0.0.23';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Echo {
  server: net.Server;
  port: number;
  received: string[];
}

async function echoServer(): Promise<Echo> {
  const received: string[] = [];
  const server = net.createServer((s) => {
    s.on('data', (d) => {
      received.push(d.toString());
      s.write(d);
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as net.AddressInfo).port, received };
}

interface Client {
  socket: net.Socket;
  got: string[];
  closed: boolean;
  reset: boolean;
}

function dial(port: number, localAddress: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const c: Client = { socket: net.connect({ host: '127.0.0.1', port, localAddress }), got: [], closed: false, reset: false };
    c.socket.on('data', (d) => c.got.push(d.toString()));
    c.socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET') c.reset = true;
    });
    c.socket.on('close', () => (c.closed = true));
    c.socket.once('connect', () => resolve(c));
    c.socket.once('error', reject);
  });
}

async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const t0 = Date.now();
  while (!cond() && Date.now() - t0 < ms) await sleep(10);
  return cond();
}

describe('nemesis link proxy', () => {
  let network: InstanceType<typeof Network>;
  let echo: Echo;
  const clients: Client[] = [];

  async function setup() {
    network = new Network();
    network.addNode('a', A_IP);
    network.addNode('c', C_IP);
    echo = await echoServer();
    const proxy = await network.proxy('b', 0, echo.port);
    return proxy.listenPort as number;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.socket.destroy();
    await network?.close();
    await new Promise((r) => echo?.server.close(r));
  });

  it('forwards both ways on a link in pass, and knows the dialler by its source address', async () => {
    const port = await setup();
    const a = await dial(port, A_IP);
    clients.push(a);
    a.socket.write('hello');
    expect(await until(() => a.got.join('') === 'hello')).toBe(true);
    expect(network.nodeAt(A_IP)).toBe('a');
    expect(network.nodeAt(`::ffff:${A_IP}`)).toBe('a');
    expect(network.stats.accepted).toBe(1);
    expect(network.stats.byLink).toEqual({ 'a>b': 1 });
  });

  it('blackhole holds the connection open and drops the bytes of that direction only for that pair', async () => {
    const port = await setup();
    const a = await dial(port, A_IP);
    const c = await dial(port, C_IP);
    clients.push(a, c);
    network.set('a', 'b', 'blackhole');
    a.socket.write('lost');
    c.socket.write('kept');
    expect(await until(() => c.got.join('') === 'kept')).toBe(true);
    await sleep(200);
    expect(echo.received.join('')).toBe('kept'); // a's bytes never reached b
    expect(a.got).toEqual([]);
    expect(a.closed).toBe(false); // held, not reset: the peer sees a timeout
    // a new connection from a is accepted too, and its bytes also vanish
    const a2 = await dial(port, A_IP);
    clients.push(a2);
    a2.socket.write('also lost');
    await sleep(200);
    expect(a2.closed).toBe(false);
    expect(echo.received.join('')).toBe('kept');
  });

  it('one-way: b→a blackholed lets a be heard by b but b is not heard by a', async () => {
    const port = await setup();
    const a = await dial(port, A_IP);
    clients.push(a);
    network.oneWay('b', 'a'); // b hears a; a does not hear b
    a.socket.write('ping');
    expect(await until(() => echo.received.join('') === 'ping')).toBe(true);
    await sleep(200);
    expect(a.got).toEqual([]); // the echo (b→a) was dropped
    expect(a.closed).toBe(false);
  });

  it('healing a link that dropped bytes ends its connections, and new ones pass', async () => {
    const port = await setup();
    const a = await dial(port, A_IP);
    clients.push(a);
    network.set('a', 'b', 'blackhole');
    a.socket.write('x');
    await sleep(100);
    network.heal();
    expect(await until(() => a.closed)).toBe(true);
    const a2 = await dial(port, A_IP);
    clients.push(a2);
    a2.socket.write('after');
    expect(await until(() => a2.got.join('') === 'after')).toBe(true);
  });

  it('reset destroys live connections of the pair and refuses new ones; other nodes still pass', async () => {
    const port = await setup();
    const a = await dial(port, A_IP);
    const c = await dial(port, C_IP);
    clients.push(a, c);
    network.isolate('b', ['a', 'b'], 'reset');
    expect(await until(() => a.closed)).toBe(true);
    expect(c.closed).toBe(false);
    const a2 = await dial(port, A_IP).catch(() => undefined);
    if (a2 !== undefined) {
      clients.push(a2);
      expect(await until(() => a2.closed)).toBe(true);
    }
    expect(network.stats.refused).toBe(1);
    c.socket.write('still');
    expect(await until(() => c.got.join('') === 'still')).toBe(true);
  });

  it('split cuts every link between groups both ways and leaves links inside a group alone', async () => {
    network = new Network();
    network.split([['a', 'c'], ['b']]);
    expect(network.mode('a', 'b')).toBe('blackhole');
    expect(network.mode('b', 'c')).toBe('blackhole');
    expect(network.mode('a', 'c')).toBe('pass');
    network.heal();
    expect(network.describe()).toEqual([]);
  });
});
