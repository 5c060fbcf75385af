// shardgrid/keyv (issue 15): the Keyv storage adapter passes Keyv's own adapter test suite
// (@keyv/test-suite: API, values, namespaces, and the iterator tests), on one grid shared by every
// adapter instance the suite creates; and what the suite does not check: entries live in the
// grid's shared memory (another thread sees them), the grid's TTL applies, a namespace is a map.
import * as vitest from 'vitest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Keyv from 'keyv';
import { keyvApiTests, keyvIteratorTests, keyvNamespaceTest, keyvValueTests } from '@keyv/test-suite';
import { Worker } from 'node:worker_threads';
import { createGrid, type Grid } from '../dist/index.js';
import { KeyvShardgrid } from '../dist/keyv.js';

let grid: Grid;
const store = () => new KeyvShardgrid({ grid });

describe('@keyv/test-suite on KeyvShardgrid', () => {
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '32MB' });
  });
  afterAll(async () => {
    await grid.close();
  });
  keyvApiTests(vitest as never, Keyv, store as never);
  keyvValueTests(vitest as never, Keyv, store as never);
  keyvNamespaceTest(vitest as never, Keyv, store as never);
  keyvIteratorTests(vitest as never, Keyv, store as never);

  it('keeps entries in the grid: one map per namespace, read by another thread over shared memory', async () => {
    const keyv = new Keyv({ store: store(), namespace: 'sessions' });
    await keyv.set('a', { user: 'ada' });
    expect(await grid.map('keyv:sessions').get('sessions:a')).toEqual(expect.any(String)); // Keyv's serialized form
    const seen = await new Promise<unknown>((resolve, reject) => {
      const w = new Worker(
        `const { workerData, parentPort } = require('node:worker_threads');
         import(workerData.url).then(async ({ attachGrid }) => {
           const g = await attachGrid(workerData.handle);
           parentPort.postMessage(await g.map('keyv:sessions').get('sessions:a'));
           await g.close();
         });`,
        { eval: true, workerData: { handle: grid.handle, url: new URL('../dist/index.js', import.meta.url).href } },
      );
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(JSON.parse(seen as string).value).toEqual({ user: 'ada' });
  });

  it("the grid's TTL applies: an entry set with a ttl is gone from the map after it", async () => {
    const keyv = new Keyv({ store: store(), namespace: 'ttl' });
    await keyv.set('k', 'v', 100);
    expect(await grid.map('keyv:ttl').ttl('ttl:k')).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 150));
    expect(await grid.map('keyv:ttl').has('ttl:k')).toBe(false);
  });

  it('an adapter that created its grid closes it on disconnect; one given a grid leaves it open', async () => {
    const own = new KeyvShardgrid({ gridOptions: { workers: 1, memory: '16MB' } });
    const keyv = new Keyv({ store: own });
    await keyv.set('x', 1);
    expect(await keyv.get('x')).toBe(1);
    await keyv.disconnect();
    // Keyv turns store errors into its 'error' event and undefined; the adapter itself rejects
    await expect(own.get('x')).rejects.toMatchObject({ code: 'GRID_ERR_CLOSED' });
    const shared = new Keyv({ store: store() });
    await shared.set('still', 'open');
    await shared.disconnect();
    expect(await shared.get('still')).toBe('open');
  });
});
