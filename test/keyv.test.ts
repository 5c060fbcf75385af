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

  it('a store per Keyv over one grid keeps namespaces apart; one store shared by two Keyv instances is reported, as Keyv 5 gives a store one namespace', async () => {
    const warnings: string[] = [];
    const quiet = () => undefined;
    const logged = await createGrid({ workers: 1, memory: '16MB', logger: { debug: quiet, info: quiet, error: quiet, warn: (m: unknown) => void warnings.push(String(m)) } });
    const settled = () => new Promise((r) => setImmediate(r)); // the warning goes out once the adapter's grid promise settles
    try {
      // the README's way: a KeyvShardgrid per Keyv, sharing the grid (and a namespace changed on one Keyv)
      const sessions = new Keyv({ store: new KeyvShardgrid({ grid: logged }), namespace: 'sessions' });
      const pages = new Keyv({ store: new KeyvShardgrid({ grid: logged }), namespace: 'pages' });
      await sessions.set('s1', 'ada');
      await pages.set('/home', '<h1>hello</h1>');
      const keys = async (k: Keyv) => {
        const out: string[] = [];
        for await (const [key] of k.iterator!(undefined)) out.push(key as string);
        return out;
      };
      expect(await keys(sessions)).toEqual(['s1']);
      expect(await keys(pages)).toEqual(['/home']);
      await sessions.clear();
      expect(await sessions.get('s1')).toBeUndefined();
      expect(await pages.get('/home')).toBe('<h1>hello</h1>');
      pages.namespace = 'pages2';
      await settled();
      expect(warnings).toEqual([]);
      // one store given to two Keyv instances: both would now use the second one's namespace
      const shared = new KeyvShardgrid({ grid: logged });
      new Keyv({ store: shared, namespace: 'a' });
      await settled();
      expect(warnings).toEqual([]);
      new Keyv({ store: shared, namespace: 'b' });
      await settled();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/one KeyvShardgrid is the store of two Keyv instances .*give each Keyv its own KeyvShardgrid/);
    } finally {
      await logged.close();
    }
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
