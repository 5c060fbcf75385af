// Helpers of the differential run against redis-server (README in this folder's diff.mjs header):
// a raw RESP connection that reads exactly one reply per request, and a redis-server on a free
// loopback port.
import { spawn } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';

export function enc(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply at buf[pos]; returns [value, end] or undefined when incomplete. */
export function parse(buf, pos) {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return undefined;
  const t = String.fromCharCode(buf[pos]);
  const line = buf.toString('latin1', pos + 1, eol);
  const next = eol + 2;
  switch (t) {
    case '+': case '-': case ':': case ',': case '#': case '_': case '(':
      return [{ t, v: line }, next];
    case '$': case '=': case '!': {
      const n = Number(line);
      if (n < 0) return [{ t, v: null }, next];
      if (buf.length < next + n + 2) return undefined;
      return [{ t, v: buf.toString('latin1', next, next + n) }, next + n + 2];
    }
    case '*': case '~': case '>': case '%': case '|': {
      let n = Number(line);
      if (n < 0) return [{ t, v: null }, next];
      if (t === '%' || t === '|') n *= 2;
      const items = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (r === undefined) return undefined;
        items.push(r[0]);
        p = r[1];
      }
      return [{ t, v: items }, p];
    }
    default:
      throw new Error(`bad reply type ${JSON.stringify(t)} in ${JSON.stringify(buf.toString('latin1', pos, pos + 80))}`);
  }
}

export class Conn {
  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.waiter = null;
    this.closed = false;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.waiter?.(); });
    sock.on('close', () => { this.closed = true; this.waiter?.(); });
    sock.on('error', () => {});
  }
  static open(port) {
    return new Promise((res, rej) => { const s = connect(port, '127.0.0.1', () => res(new Conn(s))); s.once('error', rej); });
  }
  /** Sends args and resolves with { raw, val } of one reply, or { closed: true }. */
  async cmd(args, ms = 5000) {
    this.sock.write(enc(args));
    return this.read(ms);
  }
  async read(ms = 5000) {
    const end = Date.now() + ms;
    for (;;) {
      if (this.buf.length > 0) {
        const r = parse(this.buf, 0);
        if (r !== undefined) {
          const raw = this.buf.subarray(0, r[1]).toString('latin1');
          this.buf = this.buf.subarray(r[1]);
          return { raw, val: r[0] };
        }
      }
      if (this.closed) return { raw: '<closed>', val: { t: 'closed' }, closed: true };
      if (Date.now() > end) return { raw: '<timeout>' + this.buf.toString('latin1').slice(0, 200), val: { t: 'timeout' } };
      await new Promise((r) => { this.waiter = r; setTimeout(r, 100); });
      this.waiter = null;
    }
  }
  end() { this.sock.destroy(); }
}

export function freePort() {
  return new Promise((res) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => res(p)); }); });
}
/** A redis-server on a free loopback port, without persistence; kill its `proc` when done. */
export async function startRedis() {
  const port = await freePort();
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', tmpdir()], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    try { const c = await Conn.open(port); c.end(); return { port, proc }; } catch { await new Promise((r) => setTimeout(r, 50)); }
  }
  throw new Error('redis did not start');
}

/** A connection to each server for one sequence: RESP3 after HELLO 3 when `proto` is 3, the database emptied. */
export async function openPair(redisPort, gridPort, proto) {
  const cs = [await Conn.open(redisPort), await Conn.open(gridPort)];
  if (proto === 3) for (const c of cs) await c.cmd(['HELLO', '3']);
  for (const c of cs) await c.cmd(['FLUSHDB']);
  return cs;
}

/** The RESP port under test: `port` when given, else a single-process grid's started here (close `grid` when done). */
export async function gridUnderTest(port) {
  if (port) return { port };
  const { createGrid } = await import(new URL('../../../dist/index.js', import.meta.url).href);
  const grid = await createGrid({ workers: 1, memory: '32MB', resp: { port: 0 } });
  return { port: grid.resp.port, grid };
}
