/**
 * Virtual node: one worker thread of a member. It owns a set of partitions and runs the work
 * that must not run on callers' threads: the LRU clock, active expiry (Redis-style sampling), and
 * background eviction that keeps a few pages free once the heap has reached its budget, so that
 * writers rarely evict inline. Data never passes through here: callers read and write shared
 * memory directly.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { ShardStore } from '../storage/store.js';
import { lockSync, tryLock, unlock } from '../sync/mutex.js';
import type { FromVnode, ToVnode, VnodeInit } from './messages.js';

const init = workerData as VnodeInit;
const store = new ShardStore(init.buffers, init.lockTimeout);
let owned = init.partitions.slice();
let cursor = 0;
const port = parentPort!;

/** Active expiry over owned partitions, bounded to ~2 ms of work per tick. */
function expiryTick(): void {
  const deadline = performance.now() + 2;
  const now = Date.now();
  for (let k = 0; k < owned.length && performance.now() < deadline; k++) {
    const p = owned[(cursor + k) % owned.length];
    if (store.ttlCount(p) <= 0) continue;
    if (!tryLock(store.ci, store.lockIndex(p))) continue;
    store.beginWrite(p);
    try {
      store.expireSample(p, now);
    } finally {
      store.endWrite(p);
      unlock(store.ci, store.lockIndex(p));
    }
  }
  cursor = owned.length === 0 ? 0 : (cursor + 1) % owned.length;
}

/** Keeps LOW_WATER pages available once the heap is at its budget. */
function pressureTick(): void {
  const lowWater = Math.max(2, Math.ceil(owned.length / 8));
  const deadline = performance.now() + 4;
  while (store.freePages() < lowWater && performance.now() < deadline) {
    // the owned partition whose sampled entries are oldest (by page count alone, a partition
    // holding one large value was always chosen, and the value just written went first)
    const best = store.victimOrder(-1, owned)[0];
    if (best === undefined) return;
    if (!lockSync(store.ci, store.lockIndex(best), 50)) return;
    store.beginWrite(best);
    let gained = false;
    try {
      gained = store.releaseOnePage(best);
    } finally {
      store.endWrite(best);
      unlock(store.ci, store.lockIndex(best));
    }
    if (!gained) return;
  }
}

const timer = setInterval(() => {
  if (store.closed) return;
  store.tickClock();
  expiryTick();
  pressureTick();
}, init.expiryInterval);

port.on('message', (m: ToVnode) => {
  if (m.type === 'assign') {
    owned = m.partitions.slice();
    cursor = 0;
  } else if (m.type === 'stop') {
    clearInterval(timer);
    port.postMessage({ type: 'stopped', index: init.index } satisfies FromVnode);
    port.close();
  }
});

port.postMessage({ type: 'ready', index: init.index } satisfies FromVnode);
