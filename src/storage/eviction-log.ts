/**
 * Test-only record of evictions, for the fault harness's checker (test/nemesis, `--memory`): with
 * `SHARDGRID_TEST_EVICTION_LOG=<dir>` every thread that evicts an entry appends one line to a file
 * of its own in `<dir>`, written through at once (a `kill -9` of the process loses none):
 *
 *   <wall-clock ms, 3 decimals> <partition> <map name as JSON> <key as JSON>
 *
 * A cache may drop any key; the checker then accepts a key that reads absent only where some
 * member evicted it, so a copy that loses a key for another reason is still a lost write. Unset
 * (always, outside the harness), the store's one check is a constant.
 *
 * With `SHARDGRID_TEST_EVICTION_WHY=<regular expression>` as well, every line gains a fifth
 * field, why: `<P|C>/<age in clock ticks, -1 unknown>` (P: the member was the partition's serving
 * primary), and for a key the expression matches `/<the evicting call chain, innermost first>`,
 * for tracing which path took a given key (the chain costs a stack trace: keep the expression
 * narrow).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

const DIR = process.env.SHARDGRID_TEST_EVICTION_LOG;
const WHY = process.env.SHARDGRID_TEST_EVICTION_WHY;
const why = DIR !== undefined && DIR !== '' && WHY !== undefined && WHY !== '' ? new RegExp(WHY) : null;

/** True when evictions are recorded (the env variable names a folder). */
export const EVICTION_LOG = DIR !== undefined && DIR !== '';

let fd = -1;

/** The store functions of a stack trace, innermost first, joined by `<` (the why field). */
function chain(): string {
  const out: string[] = [];
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 24;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  for (const line of stack.split('\n').slice(3)) {
    const m = /at (?:\S+\.)?(\w+) \(/.exec(line);
    if (m !== null && m[1] !== 'countEviction' && m[1] !== 'evicted') out.push(m[1]);
  }
  return out.slice(0, 16).join('<');
}

/**
 * Appends one eviction (key: `len` bytes of `bytes` at `at`, UTF-8; `primary`, `age`: the why
 * field's). Errors are dropped: the harness sees a missing line as a lost write, never a crash here.
 */
export function logEviction(p: number, map: string | undefined, bytes: Uint8Array, at: number, len: number, primary = false, age = -1): void {
  try {
    if (fd < 0) {
      fd = openSync(join(DIR!, `evictions-${process.pid}-${threadId}.log`), 'a');
      process.once('exit', () => closeSync(fd));
    }
    const t = performance.timeOrigin + performance.now();
    const key = Buffer.from(bytes.slice(at, at + len)).toString('utf8');
    const tail = why === null ? '' : ` ${primary ? 'P' : 'C'}/${age}${why.test(key) ? `/${chain()}` : ''}`;
    writeSync(fd, `${t.toFixed(3)} ${p} ${JSON.stringify(map ?? null)} ${JSON.stringify(key)}${tail}\n`);
  } catch {
    // the harness's checker reports a key it cannot account for
  }
}
