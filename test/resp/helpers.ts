// Helpers of the RESP tests: redis-cli runs, raw sockets that send bytes and collect replies.
import { execFile, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

/**
 * A 3-member cluster for the tests of one describe block: two member processes and a member in
 * this process (`m`) with a RESP port; the processes get one too when `respOnAll`. Started before
 * the block's tests, killed after them.
 */
export function respCluster(secret: string, respOnAll = false): { a: GridProcess; b: GridProcess; m: Grid } {
  const c = {} as { a: GridProcess; b: GridProcess; m: Grid };
  const resp = respOnAll ? { resp: { port: 0 } } : {};
  beforeAll(async () => {
    c.a = await startGridMember({ backups: 1, ...resp }, secret);
    c.b = await startGridMember({ seeds: [c.a.url], backups: 1, ...resp }, secret);
    c.m = await createGrid({ workers: 1, memory: '32MB', cluster: { port: 0, seeds: [c.a.url], secret, backups: 1 }, resp: { port: 0 } });
  }, 90_000);
  afterAll(async () => {
    await c.m?.close();
    for (const p of [c.a, c.b]) p?.proc.kill('SIGKILL');
  });
  return c;
}

/** Runs redis-cli against `port` with `args`; resolves with its stdout (trailing newline removed), whatever its exit code. */
export function cli(port: number, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = execFile('redis-cli', ['-p', String(port), ...args], { timeout: 20_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => {
      if (err !== null && (err as NodeJS.ErrnoException).code === 'ENOENT') return reject(err);
      const out = stdout.replace(/\n$/, '');
      // redis-cli prints an error reply with one more newline
      resolve(/^(ERR|NOPROTO|WRONGPASS|NOAUTH|DENIED|OOM|WRONGTYPE)\b/.test(out) ? out.replace(/\n$/, '') : out);
    });
    if (input !== undefined) p.stdin!.end(input);
  });
}

/** Pipes `data` into `redis-cli --pipe`; resolves with its stdout. */
export function cliPipe(port: number, data: Buffer): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn('redis-cli', ['-p', String(port), '--pipe'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.on('close', (code) => resolve({ code, out }));
    p.stdin.end(data);
  });
}

/** A raw connection: send bytes, read what comes back, see whether the server closed it. */
export class Raw {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  /** Bytes received so far. */
  bytes = 0;
  closed = false;
  private waiters: Array<() => void> = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.bytes += d.length;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }

  /** Everything received so far. */
  get data(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  send(b: string | Buffer): void {
    this.socket.write(b);
  }

  /** Waits until `pred(text so far)` holds or the connection closed; 10 s at most. */
  async until(pred: (text: string) => boolean, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const t = this.data.toString('latin1');
      if (pred(t) || this.closed) return t;
      if (Date.now() > end) throw new Error(`timed out; got ${JSON.stringify(t.slice(0, 300))}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Waits until `n` bytes arrived (without looking at them) or the connection closed. */
  async untilBytes(n: number, ms = 20_000): Promise<number> {
    const end = Date.now() + ms;
    while (this.bytes < n && !this.closed) {
      if (Date.now() > end) throw new Error(`timed out with ${this.bytes} of ${n} bytes`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    return this.bytes;
  }

  /** Waits for `n` CRLF-terminated lines. */
  lines(n: number): Promise<string> {
    return this.until((t) => t.split('\r\n').length > n);
  }

  async waitClosed(ms = 10_000): Promise<boolean> {
    await this.until(() => this.closed, ms).catch(() => undefined);
    return this.closed;
  }

  end(): void {
    this.socket.destroy();
  }
}

/** A RESP request of these arguments. */
export function req(...args: Array<string | Buffer>): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
