// Clocks shared by the fuzzer's processes and threads (test/fuzz): process.hrtime in µs (the
// machine's monotonic clock, the same in every process) and a thread's scheduler times.
import { readFileSync } from 'node:fs';

export const us = () => Number(process.hrtime.bigint()) / 1000;

/** The calling thread's on-cpu and waiting-for-a-cpu ns (Linux schedstat), or undefined. */
export function sched() {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'latin1').split(' ').map(Number);
    return { run, wait };
  } catch {
    return undefined;
  }
}
