// The `shardgrid` command, run as users run it: `node dist/cli/main.js ...` in a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { ClusterStatus } from '../dist/index.js';
import { SAMPLE, SECRET, closeStatusMembers, closedPort, statusMember } from './fixtures/status-member.js';
import { makeCa } from './fixtures/tls.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

// Secrets reach the command as users should give them: a file only the owner can read, or SHARDGRID_SECRET.
const DIR = mkdtempSync(join(tmpdir(), 'shardgrid-cli-'));
afterAll(() => rmSync(DIR, { recursive: true, force: true }));
function secretFile(name: string, contents: string, mode = 0o600): string {
  const f = join(DIR, name);
  writeFileSync(f, contents);
  chmodSync(f, mode);
  return f;
}
/** SECRET, with the trailing newline `shardgrid secret > file` leaves. */
const SECRET_FILE = secretFile('cluster.secret', `${SECRET}\n`);
const WITH_SECRET = { SHARDGRID_SECRET: SECRET };

/** The environment of every run: without SHARDGRID_SECRET unless a test sets it. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = { ...process.env, ...extra };
  if (extra.SHARDGRID_SECRET === undefined) delete e.SHARDGRID_SECRET;
  return e;
}

function launch(args: string[], extraEnv?: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: env(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Runs the command to its end (killed after limitMs). */
function run(args: string[], extraEnv?: Record<string, string>, limitMs = 15_000): Promise<Run> {
  const t0 = Date.now();
  const child = launch(args, extraEnv);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  return new Promise((resolve) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

// Commands that print and exit, nothing listening: side by side (describe.concurrent), each test
// asserting with its own context's expect.
describe.concurrent('shardgrid --help and --version', () => {
  it('lists the start and status commands and exits 0', async ({ expect }) => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: shardgrid/);
    expect(r.stdout).toMatch(/^\s+start\b/m);
    expect(r.stdout).toMatch(/^\s+status\b.*<ws-url>/m);
  });

  it('start --help names every flag and the SHARDGRID_SECRET variable', async ({ expect }) => {
    const r = await run(['start', '--help']);
    expect(r.code).toBe(0);
    for (const flag of ['--host', '--port', '--seeds', '--secret-file <path>', '--compute-module <name=path>', '--workers', '--memory', '--backups', '--lite', '--partitions', '--tls-key <path>', '--tls-cert <path>', '--tls-ca <path>']) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain('SHARDGRID_SECRET');
    expect(r.stdout).toContain('(default: 7400, 0 with --lite)'); // a lite member (a client) takes any free port
    expect(r.stdout).toContain('export SHARDGRID_SECRET=$(shardgrid secret)');
    // the RESP example with a password file: its client line gives the password (a bare ping got NOAUTH)
    expect(r.stdout).toContain('--resp-password-file resp.password\n  REDISCLI_AUTH="$(cat resp.password)" redis-cli -p 6380 ping\n');
    expect(r.stdout).not.toContain('(redis-cli -p 6380 ping)');
    // no option or example takes the secret itself in argv
    expect(r.stdout).not.toMatch(/--secret[ =<](?!file)/);
    expect(r.stdout).not.toMatch(/--secret <secret>/);
  });

  it('status --help names the url argument and every flag', async ({ expect }) => {
    const r = await run(['status', '--help']);
    expect(r.code).toBe(0);
    for (const word of ['<ws-url>', '--secret-file <path>', '--json', '--timeout', 'SHARDGRID_SECRET', '--tls-key <path>', '--tls-cert <path>', '--tls-ca <path>']) expect(r.stdout).toContain(word);
  });

  it('--version prints the version of package.json', async ({ expect }) => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(version);
  });

  it('lists the secret command, and `shardgrid secret` prints a fresh 43-character base64url secret and exits 0', async ({ expect }) => {
    expect((await run(['--help'])).stdout).toMatch(/^\s+secret\b/m);
    const [a, b] = await Promise.all([run(['secret']), run(['secret'])]);
    for (const r of [a, b]) {
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^[A-Za-z0-9_-]{43}\n$/);
      expect(Buffer.from(r.stdout.trim(), 'base64url')).toHaveLength(32);
    }
    expect(a.stdout).not.toBe(b.stdout);
  });

  it('`shardgrid secret` that cannot write its output (a full disk) exits 1 saying so, not 0 with nothing written', async ({ expect }) => {
    const full = openSync('/dev/full', 'w');
    try {
      const child = spawn(process.execPath, [CLI, 'secret'], { cwd: ROOT, env: env(), stdio: ['ignore', full, 'pipe'] });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
      expect(stderr).toMatch(/^shardgrid: cannot write the output: .*ENOSPC/);
      expect(stderr).not.toMatch(/\n\s+at /);
      expect(code).toBe(1);
    } finally {
      closeSync(full);
    }
  });

  it('exits 2 with the usage when no command is given', async ({ expect }) => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/Usage: shardgrid/);
  });
});

describe('usage errors exit 2 with a message naming what is wrong', () => {
  const secret = ['--secret-file', SECRET_FILE];
  const cases: [string, string[], RegExp][] = [
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown flag', ['start', ...secret, '--bogus'], /unknown option '--bogus'/],
    ['a port that is not an integer', ['start', ...secret, '--port', 'abc'], /'--port <port>' argument 'abc' is invalid.*integer from 0 to 65535/],
    ['a fractional port', ['start', ...secret, '--port', '74.5'], /'--port <port>' argument '74.5' is invalid/],
    ['a port out of range', ['start', ...secret, '--port', '65536'], /'--port <port>' argument '65536' is invalid/],
    ['negative backups', ['start', ...secret, '--backups', '-1'], /'--backups <n>' argument '-1' is invalid.*integer from 0 to 6/],
    ['zero workers', ['start', ...secret, '--workers', '0'], /'--workers <n>' argument '0' is invalid.*integer from 1 to 256/],
    // values the flag's parser took and createGrid refused used to exit 1 naming options.cluster.backups,
    // options.workers, options.partitions, options.memory or options.cluster.lite, not the flag
    ['backups over the most', ['start', ...secret, '--backups', '7'], /'--backups <n>' argument '7' is invalid.*integer from 0 to 6/],
    ['workers over the most', ['start', ...secret, '--workers', '300'], /'--workers <n>' argument '300' is invalid.*integer from 1 to 256/],
    ['a partition count over the most', ['start', ...secret, '--partitions', '70000'], /'--partitions <n>' argument '70000' is invalid.*integer from 1 to 65535/],
    ['a memory size out of range', ['start', ...secret, '--memory', '1MB'], /'--memory <size>' argument '1MB' is invalid.*from 4MB to 4GB \(1MB is 1048576 bytes\)/],
    ['--lite without --seeds', ['start', ...secret, '--lite'], /--lite needs --seeds/],
    ['a partition count that is not a number', ['start', ...secret, '--partitions', 'many'], /'--partitions <n>' argument 'many' is invalid/],
    ['a memory size that does not parse', ['start', ...secret, '--memory', '12 parsecs'], /'--memory <size>' argument '12 parsecs' is invalid.*256MB/],
    ['a seed that is not a ws url', ['start', ...secret, '--seeds', 'ws://127.0.0.1:7400,http://127.0.0.1:7401'], /'--seeds <urls>'.*'http:\/\/127\.0\.0\.1:7401' is not a ws:\/\//],
    ['a flag without its value', ['start', ...secret, '--port'], /'--port <port>' argument missing/],
    ['a status url whose port is out of range', ['status', ...secret, 'ws://127.0.0.1:99999'], /'ws:\/\/127\.0\.0\.1:99999' is invalid for argument 'ws-url'/],
    ['a seed whose port is out of range', ['start', ...secret, '--seeds', 'ws://127.0.0.1:99999'], /'--seeds <urls>'.*'ws:\/\/127\.0\.0\.1:99999' is not a ws:\/\/ or wss:\/\/ url/],
    ['a status url that is not a ws url', ['status', ...secret, 'localhost:7400'], /'localhost:7400' is invalid for argument 'ws-url'/],
    ['a zero status timeout', ['status', ...secret, 'ws://127.0.0.1:7400', '--timeout', '0'], /'--timeout <ms>' argument '0' is invalid/],
    ['a status without its url', ['status', ...secret], /missing required argument 'ws-url'/],
    ['--tls-key without --tls-cert and --tls-ca', ['start', ...secret, '--tls-key', 'member.key'], /--tls-key, --tls-cert and --tls-ca go together/],
    ['a wss:// status url without the TLS files', ['status', ...secret, 'wss://127.0.0.1:7400'], /wss:\/\/127\.0\.0\.1:7400 is a member with mutual TLS: pass --tls-key, --tls-cert and --tls-ca/],
    ['a wss:// seed without the TLS files', ['start', ...secret, '--seeds', 'wss://127.0.0.1:7400'], /--seeds wss:\/\/127\.0\.0\.1:7400 is a member with mutual TLS: pass --tls-key, --tls-cert and --tls-ca/],
    ['a status --tls-ca alone', ['status', ...secret, 'wss://127.0.0.1:7400', '--tls-ca', 'ca.pem'], /--tls-key, --tls-cert and --tls-ca go together/],
    ['an unreadable TLS file', ['start', ...secret, '--tls-key', '/nonexistent/m.key', '--tls-cert', '/nonexistent/m.pem', '--tls-ca', '/nonexistent/ca.pem'], /cannot read --tls-key \/nonexistent\/m\.key/],
  ];
  // Each case is a command that exits before it listens or dials: they run side by side
  // (it.concurrent, vitest's maxConcurrency 5 at a time), each checked with its own context's expect.
  it.concurrent.for(cases)('%s', async ([, args, message], { expect }) => {
    const r = await run(args);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/^shardgrid: /);
    expect(r.code).toBe(2);
  });

  it.concurrent.for([['start'], ['status', 'ws://127.0.0.1:7400']])('%s without --secret-file or SHARDGRID_SECRET exits 2 naming both', async (args, { expect }) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no cluster secret: pass --secret-file <path> or set SHARDGRID_SECRET/);
  });

  it.concurrent.for([
    ['start', '--secret', 'a-secret-in-argv-0123456789'],
    ['start', '--secret=a-secret-in-argv-0123456789'],
    ['status', 'ws://127.0.0.1:7400', '--secret', 'a-secret-in-argv-0123456789'],
  ])('%s with the secret in argv (%s) exits 2 naming --secret-file and SHARDGRID_SECRET, without echoing it', async (args, { expect }) => {
    const r = await run(args, WITH_SECRET);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^shardgrid: --secret is not accepted: .*--secret-file <path>, or set SHARDGRID_SECRET/);
    expect(r.stderr).not.toContain('a-secret-in-argv');
    expect(r.stdout).toBe('');
  });

  it('a secret under 16 bytes exits 2, from SHARDGRID_SECRET or from --secret-file, for start and status', async () => {
    const short = secretFile('short.secret', '15-bytes-secret\n');
    for (const [args, env] of [
      [['start', '--port', '0'], { SHARDGRID_SECRET: '15-bytes-secret' }],
      [['status', 'ws://127.0.0.1:7400'], { SHARDGRID_SECRET: 'é'.repeat(7) }],
      [['start', '--port', '0', '--secret-file', short], undefined],
      [['status', 'ws://127.0.0.1:7400', '--secret-file', short], undefined],
    ] as Array<[string[], Record<string, string> | undefined]>) {
      const r = await run(args, env);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/the cluster secret from (SHARDGRID_SECRET|--secret-file \S+) is 1[45] bytes; at least 16 are needed \(options\.cluster\.secret\)/);
    }
  });

  it('a --secret-file, --resp-password-file or TLS file that never ends (/dev/zero) exits 2 at once (it read until the process aborted)', async () => {
    for (const [args, message] of [
      [['status', 'ws://127.0.0.1:7400', '--secret-file', '/dev/zero'], /^shardgrid: (warning: .*\n)?shardgrid: cannot read --secret-file \/dev\/zero: more than 65536 bytes/],
      [['start', '--port', '0', '--secret-file', SECRET_FILE, '--resp-port', '0', '--resp-password-file', '/dev/zero'], /cannot read --resp-password-file \/dev\/zero: more than 65536 bytes/],
      [['start', '--port', '0', '--secret-file', SECRET_FILE, '--tls-key', '/dev/zero', '--tls-cert', '/dev/zero', '--tls-ca', '/dev/zero'], /cannot read --tls-key \/dev\/zero: more than 4194304 bytes/],
    ] as Array<[string[], RegExp]>) {
      const r = await run(args, undefined, 3000); // killed after 3 s (it read ~1 GB a second)
      expect(r.stderr).toMatch(message);
      expect(r.code).toBe(2);
    }
  });

  it('an unreadable --secret-file exits 2 naming the file', async () => {
    const r = await run(['status', 'ws://127.0.0.1:7400', '--secret-file', join(DIR, 'missing.secret')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/cannot read --secret-file .*missing\.secret/);
  });

  it('a --compute-module that is not name=path of an existing file, or a name given twice, exits 2', async () => {
    const procs = 'test/fixtures/compute-procs.mjs';
    for (const [value, message] of [
      ['procs', /expected name=path/], ['procs=./nope.mjs', /'\.\/nope\.mjs' is not an existing ES module file/],
      ['procs=data:text/javascript,export default 1', /is not an existing ES module file/], ['bad name=' + procs, /is not a module name/],
    ]) {
      const r = await run(['start', '--port', '0', '--compute-module', value as string], WITH_SECRET);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message as RegExp);
    }
    const twice = await run(['start', '--port', '0', '--compute-module', `p=${procs}`, '--compute-module', `p=${procs}`], WITH_SECRET);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain("module 'p' is given twice");
  });

  it('start treats an empty SHARDGRID_SECRET as missing', async () => {
    const r = await run(['start'], { SHARDGRID_SECRET: '' });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no cluster secret');
  });
});

describe('shardgrid start', () => {
  // a port in use was GRID_ERR_INVALID_ARGUMENT naming no option (a taken --resp-port or
  // --metrics-port: GRID_ERR_INVALID_OPTION naming options.resp / options.metrics)
  it('prints the code and message of an option createGrid refuses and exits 1: a --port in use', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      // a RESP password file others can read: warned as --secret-file is (it was read without a word)
      const password = secretFile('open.password', 'resp-password', 0o644);
      const r = await run(['start', '--port', String(port), '--resp-port', '0', '--resp-password-file', password], WITH_SECRET);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^shardgrid: warning: --resp-password-file \S+open\.password can be read or written by other users \(mode 0644\); chmod 600 it$/m);
      expect(r.stderr).toMatch(new RegExp(`^shardgrid: GRID_ERR_INVALID_OPTION: options\\.cluster: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`, 'm'));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  // with --advertise the line gave the advertised url as the one listened on
  it('says where it listens and, with --advertise, the address it advertises', async () => {
    const m = await startMember(['--port', '0', '--workers', '1', '--memory', '16MB', '--partitions', '7', '--advertise', '127.0.0.1:1']);
    try {
      expect(m.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
      expect(m.url).not.toBe('ws://127.0.0.1:1');
      expect(m.out()).toContain(`shardgrid member ${m.id} listening on ${m.url} advertised as ws://127.0.0.1:1 (workers 1,`);
    } finally {
      m.child.kill('SIGTERM');
      expect(await exitWithin(m, 10_000)).toBe(0);
    }
  });
});

describe('shardgrid status', () => {
  afterEach(closeStatusMembers);

  it('prints a header and one row per member, with human memory units (secret from --secret-file, its trailing newline ignored)', async () => {
    const member = await statusMember(() => SAMPLE);
    const r = await run(['status', member.url, '--secret-file', SECRET_FILE]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toBe('member member-a answered: partition table version 7, 271 partitions, backups 1, 3 partitions migrating');
    // which partitions move, from and to whom: a count alone could not be told stuck from moving
    expect(lines[1]).toBe('migrating: p5 member-a -> member-b, p9 member-b -> member-a, p12 (no owner) -> member-a member-b');
    expect(lines[2]).toBe('CP (on the metadata Raft log: leader member-a, term 4, applied index 812): 3 sessions, 5 locks (2 held), 1 semaphore (1 permit held), 7 atomic longs, 0 atomic refs, 1 waiting');
    // lost partitions were in --json only
    expect(lines[3]).toBe('2 partitions lost every copy at some point, beyond the backups (their data is gone): 3,17');
    expect(lines[5]).toMatch(/^MEMBER\s+URL\s+ROLE\s+STATUS\s+PRIMARIES\s+BACKUPS\s+ENTRIES\s+MEMORY USED \/ LIMIT$/);
    const row = (id: string) => lines.find((l) => l.startsWith(`${id} `))!.split(/\s{2,}/);
    expect(row('member-a')).toEqual(['member-a', 'ws://127.0.0.1:7400', 'data, coordinator', 'alive', '136', '135', '1234', '12.5MB / 256MB']);
    expect(row('member-b')).toEqual(['member-b', 'ws://127.0.0.1:7401', 'data', 'suspect', '135', '136', '-', '-']);
    expect(row('app-1')).toEqual(['app-1', 'ws://127.0.0.1:40001', 'lite', 'alive', '0', '0', '0', '0B / 0B']);
    // the columns line up: every cell of a column starts where its header does
    expect(lines[6]!.indexOf('ws://')).toBe(lines[5]!.indexOf('URL'));
    expect(lines[7]!.indexOf('ws://')).toBe(lines[5]!.indexOf('URL'));
    expect(r.stdout).toContain('member member-b did not answer: GRID_ERR_TIMEOUT: request to member member-b timed out');
  });

  it('--json prints the status object as JSON, taking the secret from SHARDGRID_SECRET', async () => {
    const member = await statusMember(() => SAMPLE);
    const r = await run(['status', member.url, '--json'], { SHARDGRID_SECRET: SECRET });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(SAMPLE);
  });

  it('exits 1 quickly with a clear message when nothing listens at the url', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const r = await run(['status', url], WITH_SECRET);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`shardgrid: cannot get the cluster status from ${url}: GRID_ERR_MEMBER_UNREACHABLE`);
    expect(r.stdout).toBe('');
    // quickly: no retry loop (a hang would hit the test's timeout); the time is printed, not asserted
    console.log(`status of a closed port exited in ${r.ms.toFixed(0)} ms`);
  });

  it('warns when --secret-file can be read by other users, and still uses it', async () => {
    const member = await statusMember(() => SAMPLE);
    const open = secretFile('open.secret', SECRET, 0o644);
    const r = await run(['status', member.url, '--json', '--secret-file', open]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/warning: --secret-file \S+open\.secret can be read or written by other users \(mode 0644\); chmod 600 it/);
    expect(JSON.parse(r.stdout)).toEqual(SAMPLE);
  });

  it('exits 1 naming the secret when the member refuses it', async () => {
    const member = await statusMember(() => SAMPLE);
    const r = await run(['status', member.url], { SHARDGRID_SECRET: 'wrong-but-long-enough-secret' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/GRID_ERR_AUTH: .*wrong cluster secret/);
    expect(member.requests).toBe(0);
  });

  // the warning before the error came as "(node:<pid>) [SHARDGRID_CLUSTER] Warning: ..." and
  // "(Use `node --trace-warnings ...` to show where the warning was created)"
  it('start with a secret the seed refuses exits 1 with GRID_ERR_AUTH, its warning in the command\'s own form', async () => {
    const member = await statusMember(() => SAMPLE);
    const r = await run(['start', '--port', '0', '--seeds', member.url], { SHARDGRID_SECRET: 'wrong-but-long-enough-secret' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^shardgrid: warning: \S+: member member-a refused our authentication \(wrong cluster secret\?\) \[GRID_ERR_AUTH\]$/m);
    expect(r.stderr).toMatch(/^shardgrid: GRID_ERR_AUTH: cannot join: every seed refused our authentication/m);
    expect(r.stderr).not.toMatch(/\(node:\d+\)|--trace-warnings/);
  });

  it('exits 1 after --timeout when the member does not answer', async () => {
    const member = await statusMember(() => new Promise(() => undefined));
    const r = await run(['status', member.url, '--timeout', '500'], WITH_SECRET);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('GRID_ERR_TIMEOUT');
    expect(r.ms).toBeGreaterThanOrEqual(500); // not before the timeout; how long after is printed, not asserted
    console.log(`status --timeout 500 exited after ${r.ms.toFixed(0)} ms`);
  });
});

// ── needs the cluster code: createGrid({ cluster }) must start a member ───────────────────────────

interface Started {
  child: ChildProcess;
  id: string;
  url: string;
  /** Everything printed on stdout so far. */
  out: () => string;
  exited: Promise<number | null>;
}

const STARTED = /^shardgrid member (\S+) listening on (wss?:\/\/\S+) /m;

/** `shardgrid start ...`; resolves once the member printed its started line. */
function startMember(args: string[]): Promise<Started> {
  const child = launch(['start', '--secret-file', SECRET_FILE, ...args]);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`member did not start within 10 s; stdout: ${stdout} stderr: ${stderr}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      const m = STARTED.exec(stdout);
      if (m !== null) {
        clearTimeout(timer);
        resolve({ child, id: m[1]!, url: m[2]!, out: () => stdout, exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`member exited with ${code} before it started; stderr: ${stderr}`));
    });
  });
}

async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The exit code, or an error if the process has not exited within limitMs. */
function exitWithin(m: Started, limitMs: number): Promise<number | null> {
  return Promise.race([m.exited, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`member ${m.id} did not exit within ${limitMs} ms`)), limitMs))]);
}

describe('shardgrid start / status with --tls-key, --tls-cert, --tls-ca', () => {
  it('a member started with the three TLS files listens on wss://, and status with them gets its answer (without them it does not)', { timeout: 60_000 }, async () => {
    makeCa(DIR, 'ca', ['m']);
    const tls = ['--tls-key', join(DIR, 'm.key'), '--tls-cert', join(DIR, 'm.pem'), '--tls-ca', join(DIR, 'ca.pem')];
    const m = await startMember(['--port', '0', '--workers', '1', '--memory', '64MB', ...tls]);
    try {
      expect(m.url).toMatch(/^wss:\/\/127\.0\.0\.1:\d+$/);
      const r = await run(['status', m.url, '--secret-file', SECRET_FILE, '--json', ...tls]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as ClusterStatus).members.map((x) => x.id)).toEqual([m.id]);
      // control: the same status call without a client certificate is refused by the member
      // (the flags of another CA's member: the CLI cannot tell, the member refuses it)
      makeCa(DIR, 'other-ca', ['other']);
      const other = ['--tls-key', join(DIR, 'other.key'), '--tls-cert', join(DIR, 'other.pem'), '--tls-ca', join(DIR, 'other-ca.pem')];
      const refused = await run(['status', m.url, '--secret-file', SECRET_FILE, '--timeout', '3000', ...other]);
      expect(refused.code).toBe(1);
      // and without any: a usage error naming the flags
      const bare = await run(['status', m.url, '--secret-file', SECRET_FILE, '--timeout', '3000']);
      expect(bare.code).toBe(2);
      expect(bare.stderr).toContain('is a member with mutual TLS: pass --tls-key, --tls-cert and --tls-ca');
    } finally {
      m.child.kill('SIGKILL');
    }
  });
});

describe('TLS files that cannot work are refused before anything starts', () => {
  it('a key of another certificate, an expired certificate, one another CA signed, a CA file without a certificate, a certificate for another host: exit 2 naming the flag and file', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(DIR, 'tls-'));
    makeCa(dir, 'ca', ['m', 'n']);
    makeCa(dir, 'other-ca', ['mallory']);
    makeCa(dir, 'old-ca', ['expired'], -1);
    const f = (name: string) => join(dir, name);
    writeFileSync(f('empty.pem'), 'not a certificate\n');
    const flags = (key: string, cert: string, ca: string) => ['--tls-key', f(key), '--tls-cert', f(cert), '--tls-ca', f(ca)];
    const cases: [string[], RegExp][] = [
      [['start', '--port', '0', ...flags('n.key', 'm.pem', 'ca.pem')], /^shardgrid: --tls-cert \S+m\.pem does not match --tls-key \S+n\.key/],
      [['status', 'wss://127.0.0.1:7400', ...flags('n.key', 'm.pem', 'ca.pem')], /^shardgrid: --tls-cert \S+m\.pem does not match --tls-key/],
      [['start', '--port', '0', ...flags('expired.key', 'expired.pem', 'old-ca.pem')], /^shardgrid: --tls-cert \S+expired\.pem expired on /],
      [['start', '--port', '0', ...flags('mallory.key', 'mallory.pem', 'ca.pem')], /^shardgrid: --tls-cert \S+mallory\.pem is not signed by --tls-ca \S+ca\.pem/],
      [['status', 'wss://127.0.0.1:7400', ...flags('m.key', 'm.pem', 'empty.pem')], /^shardgrid: --tls-ca \S+empty\.pem holds no PEM certificate/],
      [['start', '--port', '0', ...flags('m.pem', 'm.pem', 'ca.pem')], /^shardgrid: --tls-key \S+m\.pem is not a PEM private key/],
      [['start', '--port', '0', '--host', 'localhost', ...flags('m.key', 'm.pem', 'ca.pem')], /^shardgrid: --tls-cert \S+m\.pem does not name localhost, the address other members dial/],
    ];
    for (const [args, message] of cases) {
      const r = await run([...args, '--secret-file', SECRET_FILE]);
      expect({ args, stderr: r.stderr }).toEqual({ args, stderr: expect.stringMatching(message) });
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
    }
  });
});

describe('a signal while the member is still joining', () => {
  it.each(['SIGTERM', 'SIGHUP'] as const)('%s stops the join at once (it waited out the join, 5 s here, in silence) and exits 0', async (signal) => {
    // a seed that accepts the connection and never answers: the join waits for it
    const { createServer } = await import('node:net');
    let child: ChildProcess | undefined;
    const sockets: import('node:net').Socket[] = [];
    const seed = createServer((sock) => {
      sockets.push(sock);
      if (sockets.length === 1) child!.kill(signal); // the member is dialling: it is in its join
    });
    await new Promise<void>((r) => seed.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (seed.address() as { port: number }).port;
      const t0 = Date.now();
      child = launch(['start', '--secret-file', SECRET_FILE, '--port', '0', '--workers', '1', '--memory', '16MB', '--seeds', `ws://127.0.0.1:${port}`]);
      let stdout = '';
      let stderr = '';
      child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => child!.on('close', resolve));
      const ms = Date.now() - t0;
      expect(sockets.length).toBeGreaterThan(0);
      expect(stdout).toContain(`${signal}: stopping before this member has joined the cluster`);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(ms).toBeLessThan(4000); // the join alone would take 5 s
    } finally {
      for (const s of sockets) s.destroy();
      seed.close();
    }
  });
});

describe('cluster: two members started with shardgrid start', () => {
  const started: Started[] = [];
  afterEach(() => {
    for (const m of started.splice(0)) if (m.child.exitCode === null && m.child.signalCode === null) m.child.kill('SIGKILL');
  });

  it('join, show in status as two alive data members owning every partition, and leave with exit 0 on SIGTERM', async () => {
    const PARTITIONS = 31;
    const common = ['--port', '0', '--workers', '2', '--memory', '64MB', '--partitions', String(PARTITIONS), '--backups', '1', '--compute-module', 'procs=test/fixtures/compute-procs.mjs'];
    const a = await startMember(common);
    started.push(a);
    expect(a.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(a.url).not.toBe('ws://127.0.0.1:0');
    expect(a.out()).toMatch(/\(workers 2, memory 64MB, backups 1\)/);
    const b = await startMember([...common, '--seeds', a.url]);
    started.push(b);
    expect(b.id).not.toBe(a.id);

    const status = await until('two alive data members owning all partitions', 15_000, async () => {
      const r = await run(['status', a.url, '--json', '--timeout', '2000'], WITH_SECRET, 5000);
      if (r.code !== 0) return undefined;
      const s = JSON.parse(r.stdout) as ClusterStatus;
      // every sample, mid-migration included: the list names as many partitions as the count (up to 32)
      expect(s.migrations?.length).toBe(Math.min(s.migrating, 32));
      for (const m of s.migrations ?? []) expect(m.to.length).toBeGreaterThan(0);
      const data = s.members.filter((m) => !m.lite && m.status === 'alive');
      const primaries = data.reduce((n, m) => n + m.primaries, 0);
      return data.length === 2 && primaries === PARTITIONS && s.migrating === 0 ? s : undefined;
    });
    expect(status.self).toBe(a.id);
    expect(status.partitions).toBe(PARTITIONS);
    expect(status.backups).toBe(1);
    expect(status.members.map((m) => m.id).sort()).toEqual([a.id, b.id].sort());
    expect(status.members.filter((m) => m.coordinator)).toHaveLength(1);
    expect(status.members.find((m) => m.id === b.id)!.url).toBe(b.url);
    expect(a.out()).toContain(`member-joined ${b.id} ${b.url} (data)`);
    // a lite member: it said "(workers 0, memory 256MB, backups 1, lite)", a budget and copies it has no use for
    const c = await startMember(['--port', '0', '--lite', '--partitions', String(PARTITIONS), '--seeds', a.url]);
    started.push(c);
    expect(c.out()).toContain(`shardgrid member ${c.id} listening on ${c.url} (lite: owns no partitions, routes every operation to the data members)`);
    c.child.kill('SIGTERM');
    expect(await exitWithin(c, 10_000)).toBe(0);

    b.child.kill('SIGTERM');
    expect(await exitWithin(b, 10_000)).toBe(0);
    expect(b.out()).toContain(`member ${b.id} stopped`);
    await until(`member ${a.id} to log that ${b.id} left`, 5000, () => (a.out().includes(`member-left ${b.id} ${b.url} (data, left)`) ? true : undefined));

    a.child.kill('SIGTERM');
    expect(await exitWithin(a, 10_000)).toBe(0);
    expect(a.out()).toContain(`member ${a.id} stopped`);
  }, 30_000);

  it('a member removed while paused rejoins under a new id: it names that id from then on, and the others never see the old id join again', async () => {
    const common = ['--port', '0', '--workers', '1', '--memory', '16MB', '--partitions', '31'];
    const a = await startMember(common);
    started.push(a);
    const b = await startMember([...common, '--seeds', a.url]);
    started.push(b);
    const c = await startMember([...common, '--seeds', a.url]);
    started.push(c);
    await until('three data members', 15_000, () => (a.out().includes(`member-joined ${c.id}`) && b.out().includes(`member-joined ${c.id}`) ? true : undefined));
    // a pause past its lease: the others declare it dead and the log removes it
    c.child.kill('SIGSTOP');
    await until(`${c.id} declared dead`, 15_000, () => (a.out().includes(`member-left ${c.id} ${c.url} (data, dead)`) ? true : undefined));
    await new Promise((r) => setTimeout(r, 2500));
    c.child.kill('SIGCONT');
    const fresh = await until(`${c.id} to rejoin`, 20_000, () => /^rejoined as (\S+) /m.exec(c.out())?.[1]);
    expect(fresh).not.toBe(c.id);
    for (const m of [a, b]) await until(`${m.id} to see ${fresh} join`, 10_000, () => (m.out().includes(`member-joined ${fresh} ${c.url} (data)`) ? true : undefined));
    // SWIM took the old id back alive when it refuted its death; the log had removed it. Before,
    // the others (and the rejoined member itself) printed "member-joined <old id>" here
    await new Promise((r) => setTimeout(r, 1000));
    for (const m of [a, b]) {
      const [, after, more] = m.out().split(`member-left ${c.id} `);
      expect(more, m.id).toBeUndefined(); // one leave
      expect(after, m.id).not.toContain(`member-joined ${c.id} `);
    }
    expect(c.out().split('rejoined as ')[1]).not.toContain(`member-joined ${c.id} `);
    c.child.kill('SIGTERM');
    expect(await exitWithin(c, 10_000)).toBe(0);
    // it said "member <old id> stopped" after minutes as the new one
    expect(c.out()).toContain(`SIGTERM: member ${fresh} is leaving the cluster`);
    expect(c.out()).toContain(`member ${fresh} stopped`);
  }, 60_000);

  it('a member whose stdout reader went away (| head) goes on serving, and still leaves gracefully on SIGTERM', async () => {
    const common = ['--port', '0', '--workers', '1', '--memory', '16MB', '--partitions', '7'];
    const a = await startMember(common);
    started.push(a);
    let stderr = '';
    a.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    a.child.stdout!.destroy(); // as `shardgrid start | head -1` once head has its line
    // a line to print: a member joins (it used to kill a with an unhandled EPIPE)
    const b = await startMember([...common, '--seeds', a.url]);
    started.push(b);
    await until(`${a.id} in the status of ${b.id}`, 10_000, async () => {
      const r = await run(['status', b.url, '--json', '--timeout', '2000'], WITH_SECRET, 5000);
      return r.code === 0 && (JSON.parse(r.stdout) as ClusterStatus).members.filter((m) => m.status === 'alive').length === 2 ? true : undefined;
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(a.child.exitCode).toBe(null);
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    a.child.kill('SIGTERM');
    expect(await exitWithin(a, 10_000)).toBe(0);
    await until(`${b.id} to see ${a.id} leave`, 5000, () => (b.out().includes(`member-left ${a.id} ${a.url} (data, left)`) ? true : undefined));
    // SIGHUP (a closed terminal) leaves gracefully too: it used to kill the member
    b.child.kill('SIGHUP');
    expect(await exitWithin(b, 10_000)).toBe(0);
    expect(b.out()).toContain(`SIGHUP: member ${b.id} is leaving the cluster`);
  }, 30_000);
});
