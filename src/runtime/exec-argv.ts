/**
 * Node flags for the library's own worker threads (virtual nodes, the compute pool).
 *
 * A Worker inherits `process.execArgv` by default, and Node then silently skips the flags that
 * only a whole process can take (V8 flags such as `--max-old-space-size` or `--expose-gc`,
 * `--title`, `--prof`, `--perf-basic-prof`, …): the worker shares the process's V8 anyway.
 * That default is right except when the host was started with `node -e <script>` / `-p` (or
 * `--input-type`, which only makes sense with them): those flags reach the worker too and it
 * evaluates the host's script instead of its own entry, then exits. So those are dropped, and
 * then the list has to be given explicitly — and an explicit list that names a process-wide
 * flag makes `new Worker` throw ERR_WORKER_INVALID_EXEC_ARGV. `spawnExecArgv` therefore
 * inherits when nothing needs dropping, and otherwise gives the list without the flags Node
 * refuses for a worker (found once per process by a probe worker, see `acceptedBy`).
 */
import { Worker } from 'node:worker_threads';

const DROP_WITH_VALUE = new Set(['-e', '--eval', '-p', '--print']);
const DROP_ALONE = new Set(['--input-type', '--interactive', '-i']);

/** `argv` without the host-script flags (-e/-p and their scripts, --input-type, -i). */
export function workerExecArgv(argv: readonly string[] = process.execArgv): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const name = eq > 0 && a.startsWith('--') ? a.slice(0, eq) : a;
    if (DROP_WITH_VALUE.has(name)) {
      if (eq < 0) i++; // the script is the next element
      continue;
    }
    if (DROP_ALONE.has(name)) {
      if (name === '--input-type' && eq < 0) i++;
      continue;
    }
    out.push(a);
  }
  return out;
}

/**
 * The flags Node names in an ERR_WORKER_INVALID_EXEC_ARGV message ("Initiated Worker with
 * invalid execArgv flags: --a, --b=1"); empty when the text is not in that form.
 */
export function refusedFlags(message: string): string[] {
  const at = message.indexOf('flags: ');
  if (at < 0) return [];
  return message
    .slice(at + 7)
    .split(', ')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('-'));
}

/**
 * `argv` reduced until `tryArgv` accepts it: each refusal's flags are dropped; a refusal that
 * names none of them (an unknown message form) leaves no flags at all, which our own workers run
 * with. `tryArgv` throws Node's error for a refused list.
 */
export function acceptedBy(argv: readonly string[], tryArgv: (argv: string[]) => void): string[] {
  let cur = [...argv];
  for (;;) {
    try {
      tryArgv(cur);
      return cur;
    } catch (e) {
      if ((e as { code?: unknown })?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV' || cur.length === 0) throw e;
      const refused = new Set(refusedFlags((e as Error).message));
      const next = cur.filter((a) => !refused.has(a));
      cur = next.length < cur.length ? next : [];
    }
  }
}

let cached: { argv: string[] | undefined } | undefined;

/**
 * The `execArgv` option for a library worker: undefined (inherit, Node skips what a worker cannot
 * take) unless a host-script flag had to go; then the rest, without what Node refuses for a
 * worker. Found once per process.
 */
export function spawnExecArgv(): string[] | undefined {
  if (cached !== undefined) return cached.argv;
  const base = workerExecArgv();
  if (base.length === process.execArgv.length) {
    cached = { argv: undefined };
    return undefined;
  }
  // a probe thread: its constructor throws for a refused list before any thread starts; an
  // accepted one runs an empty script and exits by itself
  const argv = acceptedBy(base, (a) => {
    new Worker('', { eval: true, execArgv: a, stdout: true, stderr: true }).unref();
  });
  cached = { argv };
  return argv;
}
