/**
 * `shardgrid/keyv`: a Keyv storage adapter (https://keyv.org), so that anything built on Keyv —
 * `cacheable`, `cache-manager` v6, `@keyv/*` users — can keep its entries in a shardgrid: in the
 * shared memory of this process (every thread of it sees the same entries), or in a cluster when
 * the grid is a member of one.
 *
 * - One grid map per Keyv namespace (`keyv:<namespace>`; Keyv also prefixes keys with it), so
 *   `clear()` of one namespace leaves the others alone and costs one map clear.
 * - One adapter per Keyv instance; several adapters may share one grid. Keyv 5 gives its store
 *   one namespace at a time, by setting `store.namespace`, and calls `clear()` and `iterator()`
 *   without saying whose: an adapter shared by two Keyv instances serves whichever was made (or
 *   had its namespace set) last, for both. The adapter cannot tell its callers apart, so it
 *   reports such sharing through the grid's log (a `warn`) instead of mixing silently.
 * - TTLs are the grid's own (expired entries are never returned, and are reclaimed by the
 *   virtual nodes); Keyv's own `expires` stamp in the serialized value is checked by Keyv too.
 * - `iterator(namespace)` yields the namespace's `[key, value]` pairs (unordered, like Redis SCAN:
 *   an entry present for the whole iteration is yielded once).
 * - `disconnect()` closes the grid only if the adapter created it.
 *
 * Nothing here imports `keyv`: the adapter is the shape Keyv checks (`get`, `set`, `delete`,
 * `clear`, `opts`, `on`), so the package does not depend on it.
 */
import { EventEmitter } from 'node:events';
import { InvalidArgumentError } from './errors.js';
import { createGrid, type Grid } from './grid.js';
import type { GridOptions } from './config.js';
import type { GridMap } from './map.js';

/** Options of {@link KeyvShardgrid}. */
export interface KeyvShardgridOptions {
  /** A grid to store into (the caller closes it); without it the adapter creates one from `gridOptions` and closes it on `disconnect()`. */
  grid?: Grid;
  /** Options of the grid the adapter creates when `grid` is not given (default: createGrid's defaults). */
  gridOptions?: GridOptions;
  /** Prefix of the grid map names, one map per Keyv namespace (default `keyv:`). */
  mapPrefix?: string;
}

/**
 * A Keyv storage adapter over a shardgrid (`new Keyv({ store: new KeyvShardgrid() })`). One grid
 * map per Keyv namespace (`<mapPrefix><namespace>`); TTLs are the grid's own; every thread of the
 * process (and every member of a cluster, when the grid is one) sees the same entries. A call
 * that fails rejects with the grid's error.
 *
 * Give each Keyv instance its own adapter (they may share one grid: `{ grid }`). Keyv 5 sets
 * the namespace of the Keyv on its store and calls `clear()` without one, so one adapter shared
 * by two Keyv instances would serve the last one's namespace to both; the adapter reports that
 * as a `warn` in the grid's log (a process warning without a logger).
 *
 * @example
 * ```ts
 * import Keyv from 'keyv';
 * import { createGrid } from 'shardgrid';
 * import { KeyvShardgrid } from 'shardgrid/keyv';
 *
 * const grid = await createGrid({ memory: '64MB' });
 * const sessions = new Keyv({ store: new KeyvShardgrid({ grid }), namespace: 'sessions' });
 * const pages = new Keyv({ store: new KeyvShardgrid({ grid }), namespace: 'pages' }); // a store per Keyv
 * await sessions.set('s1', { user: 'ada' }, 60_000);
 * await grid.close(); // a grid passed as `grid` is the caller's to close
 * ```
 */
export class KeyvShardgrid extends EventEmitter {
  /**
   * What Keyv reads of an adapter. Keyv 5 turns `keyv.iterator()` on only for the adapter dialects
   * it lists (sqlite, postgres, mysql, mongo, redis, valkey, etcd) and reads `dialect` for nothing
   * else; this adapter iterates with the same contract as the redis one (unordered, each key once),
   * so it declares that dialect to have Keyv use its `iterator`.
   */
  readonly opts: { dialect: string; url: string; mapPrefix: string; [k: string]: unknown };
  private readonly grid: Promise<Grid>;
  private readonly owned: boolean;
  private readonly maps = new Map<string, GridMap<unknown>>();
  private current: string | undefined;
  /** Set when an 'error' listener is added: Keyv adds one to its store right before it sets its namespace there. */
  private attaching = false;
  /** Keyv instances that attached to this adapter (an 'error' listener, then a namespace). */
  private keyvs = 0;

  /**
   * Makes the adapter. Without `options.grid` it starts creating a grid at once; a grid that
   * fails to start is reported by the first call (as its rejection).
   *
   * @param options - `grid` to store into, or `gridOptions` for the grid the adapter creates; `mapPrefix`.
   * @throws {InvalidArgumentError} when `options` is not an object or `mapPrefix` is not a string (GRID_ERR_INVALID_ARGUMENT).
   */
  constructor(options: KeyvShardgridOptions = {}) {
    super();
    if (options === null || typeof options !== 'object') throw new InvalidArgumentError('KeyvShardgrid options must be an object');
    const prefix = options.mapPrefix ?? 'keyv:';
    if (typeof prefix !== 'string') throw new InvalidArgumentError('mapPrefix must be a string');
    this.opts = { dialect: 'redis', url: 'shardgrid://', mapPrefix: prefix };
    this.owned = options.grid === undefined;
    this.grid = options.grid !== undefined ? Promise.resolve(options.grid) : createGrid(options.gridOptions);
    // a grid that fails to start is reported on the first call (and as Keyv's 'error' event then)
    this.grid.catch(() => undefined);
    this.on('newListener', (event: string | symbol) => {
      if (event === 'error') this.attaching = true;
    });
  }

  /**
   * The namespace of the Keyv instance using this adapter: set by Keyv (when it is made, and by
   * `keyv.namespace = …`); the maps of get, set, clear and iterator follow it. Keyv makes a store
   * its own by adding an 'error' listener and then setting its namespace; the second time that
   * happens, a second Keyv shares this adapter, and from then on each of them reads, clears and
   * iterates the namespace set last: that is reported once, as a `warn` in the grid's log.
   */
  get namespace(): string | undefined {
    return this.current;
  }

  set namespace(namespace: string | undefined) {
    this.current = namespace;
    if (!this.attaching) return;
    this.attaching = false;
    if (++this.keyvs !== 2) return;
    const msg = `one KeyvShardgrid is the store of two Keyv instances (namespace '${String(namespace).slice(0, 80)}' is the second): Keyv 5 gives a store one namespace at a time, so both now read, iterate and clear the last one set; give each Keyv its own KeyvShardgrid({ grid }) over the same grid`;
    void this.grid.then((g) => g.log('warn', msg), () => undefined);
  }

  /** The grid map of a namespace (the current one by default). */
  private async map(namespace = this.namespace): Promise<GridMap<unknown>> {
    const name = this.opts.mapPrefix + (namespace ?? '');
    let m = this.maps.get(name);
    if (m === undefined) {
      m = (await this.grid).map<unknown>(name);
      this.maps.set(name, m);
    }
    return m;
  }

  /**
   * The value Keyv stored under `key` in the current namespace, or undefined.
   *
   * @param key - The key, as Keyv gives it (prefixed with its namespace).
   * @returns The stored value (Keyv's serialized form), or undefined when absent or expired.
   */
  async get(key: string): Promise<unknown> {
    return (await this.map()).get(key);
  }

  /**
   * The values of `keys` in the current namespace, in their order (undefined for each absent key).
   *
   * @param keys - The keys.
   */
  async getMany(keys: string[]): Promise<unknown[]> {
    return (await this.map()).getMany(keys);
  }

  /**
   * Stores `value` under `key` in the current namespace.
   *
   * @param key - The key.
   * @param value - What Keyv's serializer returned (a string by default).
   * @param ttl - Time to live in ms; when it is not a number > 0, the map's default ttl applies (none unless one was registered for the map).
   * @returns True once stored.
   */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    const m = await this.map();
    await (typeof ttl === 'number' && ttl > 0 ? m.set(key, value, { ttl }) : m.set(key, value));
    return true;
  }

  /**
   * Stores every entry, as {@link KeyvShardgrid.set} does, concurrently.
   *
   * @param entries - `{ key, value, ttl? }` objects.
   */
  async setMany(entries: Array<{ key: string; value: unknown; ttl?: number }>): Promise<void> {
    await Promise.all(entries.map((e) => this.set(e.key, e.value, e.ttl)));
  }

  /**
   * Deletes `key` in the current namespace.
   *
   * @param key - The key.
   * @returns True when an entry that had not expired was deleted.
   */
  async delete(key: string): Promise<boolean> {
    return (await this.map()).delete(key);
  }

  /**
   * Deletes `keys` in the current namespace.
   *
   * @param keys - The keys.
   * @returns True when at least one of the keys was deleted.
   */
  async deleteMany(keys: string[]): Promise<boolean> {
    const m = await this.map();
    const r = await Promise.all(keys.map((k) => m.delete(k)));
    return r.some(Boolean);
  }

  /**
   * Whether `key` has an entry that has not expired, in the current namespace.
   *
   * @param key - The key.
   */
  async has(key: string): Promise<boolean> {
    return (await this.map()).has(key);
  }

  /**
   * For each of `keys`, in order, whether it has an entry that has not expired.
   *
   * @param keys - The keys.
   */
  async hasMany(keys: string[]): Promise<boolean[]> {
    const m = await this.map();
    return Promise.all(keys.map((k) => m.has(k)));
  }

  /** Clears the current namespace only: one clear of its grid map; other namespaces are untouched. */
  async clear(): Promise<void> {
    await (await this.map()).clear();
  }

  /**
   * The `[key, value]` pairs of a namespace: unordered, like Redis SCAN; an entry present for the
   * whole iteration is yielded once.
   *
   * @param namespace - The namespace (default: the current one).
   */
  async *iterator(namespace?: string): AsyncGenerator<[string, unknown], void> {
    const m = await this.map(namespace ?? this.namespace);
    for await (const [k, v] of m.entries()) yield [k, v];
  }

  /** Closes the grid if this adapter created it; a grid passed as `options.grid` stays open. */
  async disconnect(): Promise<void> {
    if (!this.owned) return;
    const g = await this.grid.catch(() => undefined);
    await g?.close();
  }
}

export default KeyvShardgrid;
