// A garbage-collection function without starting node with --expose-gc: the grid hands
// process.execArgv to its own worker threads, and Worker rejects V8 flags such as --expose-gc
// there (ERR_WORKER_INVALID_EXEC_ARGV). Setting the flag at run time and fetching `gc` from a
// fresh context gives the same function. Works in worker threads too.
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const collect = globalThis.gc ?? vm.runInNewContext('gc');

/** Full collection, twice (the second pass catches what the first one's finalizers freed). */
export function gc() {
  collect();
  collect();
}

export const heapUsed = () => {
  gc();
  return v8.getHeapStatistics().used_heap_size;
};
