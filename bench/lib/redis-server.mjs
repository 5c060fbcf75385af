// Starts a throw-away redis-server on a free loopback port for the benchmark, waits until it
// answers PING, and stops it again. No persistence (--save '' --appendonly no). When the binary
// is missing, `startRedis` resolves to { skipped: reason } instead of failing.
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';

export const REDIS_INSTALL_HINT = 'sudo apt-get install -y redis-server';
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** One raw RESP round trip (no client library): sends `cmd` (array of strings), resolves the reply text. */
export function rawCommand(port, cmd, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('timeout')); }, timeoutMs);
    sock.on('connect', () => sock.write(`*${cmd.length}\r\n${cmd.map((c) => `$${Buffer.byteLength(c)}\r\n${c}\r\n`).join('')}`));
    sock.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.startsWith('$')) {
        const nl = buf.indexOf('\r\n');
        const len = Number(buf.slice(1, nl));
        if (len < 0 || buf.length < nl + 2 + len + 2) return;
      } else if (!buf.endsWith('\r\n')) return;
      clearTimeout(timer);
      sock.end();
      resolve(buf);
    });
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

/**
 * Resolves { host, port, version, pid, stop() } for a running server, or { skipped } with the
 * reason when redis-server is not installed or does not start.
 */
export async function startRedis({ bin = 'redis-server' } = {}) {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
  let child;
  try {
    child = spawn(bin, args, { cwd: os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    return { skipped: `redis-server could not be started (${e.message})` };
  }
  let log = '';
  child.stdout.on('data', (d) => { log = (log + d).slice(-4000); });
  child.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const spawnError = await new Promise((resolve) => {
    child.once('error', (e) => resolve(e));
    child.once('spawn', () => resolve(null));
  });
  if (spawnError) {
    return {
      skipped: spawnError.code === 'ENOENT'
        ? `redis-server is not installed (install it with: ${REDIS_INSTALL_HINT})`
        : `redis-server could not be started (${spawnError.message})`,
    };
  }

  let stopping;
  const stop = () => {
    if (stopping) return stopping;
    stopping = (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(t);
    })();
    return stopping;
  };
  // Last resort when the parent exits without calling stop() (uncaught error, process.exit).
  const onExit = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); };
  process.once('exit', onExit);
  exited.then(() => process.off('exit', onExit));

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) return { skipped: `redis-server exited at start (code ${child.exitCode}): ${log.trim().split('\n').pop()}` };
    try {
      if ((await rawCommand(port, ['PING'])).startsWith('+PONG')) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) {
      await stop();
      return { skipped: `redis-server did not answer PING within ${READY_TIMEOUT_MS} ms` };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const info = await rawCommand(port, ['INFO', 'server']).catch(() => '');
  const version = /redis_version:([^\r\n]+)/.exec(info)?.[1] ?? 'unknown';
  return { host: '127.0.0.1', port, version, pid: child.pid, stop };
}
