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
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

const DIR = process.env.SHARDGRID_TEST_EVICTION_LOG;

/** True when evictions are recorded (the env variable names a folder). */
export const EVICTION_LOG = DIR !== undefined && DIR !== '';

let fd = -1;

/** Appends one eviction (key: `len` bytes of `bytes` at `at`, UTF-8). Errors are dropped: the harness sees a missing line as a lost write, never a crash here. */
export function logEviction(p: number, map: string | undefined, bytes: Uint8Array, at: number, len: number): void {
  try {
    if (fd < 0) {
      fd = openSync(join(DIR!, `evictions-${process.pid}-${threadId}.log`), 'a');
      process.once('exit', () => closeSync(fd));
    }
    const t = performance.timeOrigin + performance.now();
    writeSync(fd, `${t.toFixed(3)} ${p} ${JSON.stringify(map ?? null)} ${JSON.stringify(Buffer.from(bytes.slice(at, at + len)).toString('utf8'))}\n`);
  } catch {
    // the harness's checker reports a key it cannot account for
  }
}
