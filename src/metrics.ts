/**
 * Prometheus metrics with prom-client. Nothing here runs on an operation's path: every metric is
 * a collect() callback that reads, when a registry is scraped, counters the grid keeps anyway
 * (grid.stats(), the per-map operation counts of GridMap.ops, the RESP endpoint's counters, the
 * cluster node's table and transport counters). The few kept for metrics alone are plain
 * increments on their paths: replication outcomes (Replicas.repStats), lock waits
 * (sync/mutex.ts) and request round trips (the transport's LatencyHistogram).
 *
 * Embedded use: `grid.metrics.register(registry)` adds the grid's metrics to the application's
 * own prom-client Registry (or `createGrid({ metrics: { registry } })`). Standalone:
 * `createGrid({ metrics: { port } })` / `shardgrid start --metrics-port N` serves `/metrics` on a
 * small node:http server, loopback by default.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, type Metric } from 'prom-client';
import type { ResolvedMetricsOptions } from './config.js';
import { GridClosedError, InvalidArgumentError, InvalidOptionError } from './errors.js';
import type { Grid } from './grid.js';
import { OP_KINDS } from './map.js';
import { lockWaits } from './sync/mutex.js';
import { LATENCY_BUCKETS } from './transport/latency.js';

/**
 * The /metrics server's HTTP limits: a scrape is one small GET, so a request's headers must come
 * within 5 s (whole request 10 s; node:http checks every second) and fit in 8 KiB, and an idle
 * keep-alive connection is closed after 5 s (Prometheus opens a new one when it has to).
 */
const HTTP_LIMITS = { maxHeaderSize: 8192, headersTimeout: 5000, requestTimeout: 10_000, keepAliveTimeout: 5000, connectionsCheckingInterval: 1000 };
/**
 * Scrapes the /metrics server answers: SCRAPE_BURST at once, then SCRAPES_PER_SECOND (at most ~3 %
 * of the main thread); the others get 429. A collection takes ~0.5 ms of the main thread, and 32
 * clients scraping in a loop got ~1,000 a second, the thread's RESP PING p50 going from 0.5 ms to
 * 40 ms. A Prometheus server scrapes a target every few seconds; the burst leaves room for tools
 * and tests that read a counter after each step.
 */
const SCRAPES_PER_SECOND = 50;
const SCRAPE_BURST = 100;

type Collect<T> = (this: T) => void | Promise<void>;
/** One of the grid's metrics and its name (prom-client's types do not expose a metric's name). */
interface Made {
  name: string;
  metric: Metric;
}

/**
 * `grid.metrics`: the grid's Prometheus metrics (prom-client), collected when scraped from
 * counters the grid keeps.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 *
 * const registry = new Registry();
 * grid.metrics.register(registry);          // or createGrid({ metrics: { registry } })
 * console.log(await grid.metrics.text());   // Prometheus text format
 * ```
 */
export class GridMetrics {
  /** The grid's own registry (what /metrics serves). */
  readonly registry = new Registry();
  /** The registries this grid's metrics are on, each with the metric objects put there (close() takes them off). */
  private readonly registered = new Map<Registry, Made[]>();
  private closed = false;
  private server: Server | undefined;
  private bound: AddressInfo | undefined;

  /** @internal use grid.metrics */
  constructor(private readonly grid: Grid) {
    this.register(this.registry);
  }

  /**
   * Adds the grid's metrics to `registry` (an application's prom-client Registry). Idempotent per registry.
   * The metrics stay there until the grid is closed: `grid.close()` takes them off again, so a
   * grid that replaces a closed one can register on the same registry.
   *
   * @param registry - A prom-client Registry.
   * @throws {InvalidArgumentError} when `registry` is not a prom-client Registry, or already has a
   * metric of one of the grid's names (another grid's, still open); nothing is registered then
   * (GRID_ERR_INVALID_ARGUMENT).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   */
  register(registry: Registry): void {
    if (!(registry instanceof Registry) && (typeof registry !== 'object' || registry === null || typeof (registry as Registry).registerMetric !== 'function')) {
      throw new InvalidArgumentError('metrics.register(registry): registry must be a prom-client Registry');
    }
    if (registry !== this.registry) {
      // a closed grid's metrics would stay on the registry for good (close() is what takes them off)
      if (this.closed) throw new GridClosedError('metrics.register(registry): the grid is closed');
      this.grid.assertOpen();
    }
    if (this.registered.has(registry)) return;
    // made unregistered, checked against the registry, then put there all together: a clash
    // leaves nothing of this grid behind (prom-client would throw at the clashing one, untyped,
    // with the metrics before it already registered)
    const made = this.make();
    const taken = made.filter((m) => registry.getSingleMetric(m.name) !== undefined).map((m) => m.name);
    if (taken.length > 0) {
      throw new InvalidArgumentError(
        `metrics.register(registry): the registry already has a metric named ${taken[0]}${taken.length > 1 ? ` (and ${taken.length - 1} more of the grid's names)` : ''}: another grid's metrics are registered there (close that grid first), or the application uses the name`,
        { metric: taken[0] },
      );
    }
    for (const m of made) registry.registerMetric(m.metric);
    this.registered.set(registry, made);
  }

  /** The grid's metrics, registered nowhere yet. */
  private make(): Made[] {
    const made: Made[] = [];
    const g = this.grid;
    const reg: Registry[] = [];
    const stats = () => g.stats();

    const counter = (name: string, help: string, labelNames: string[], collect: Collect<Counter<string>>): void =>
      void made.push({ name, metric: new Counter({ name, help, labelNames, registers: reg, collect }) });
    const gauge = (name: string, help: string, labelNames: string[], collect: Collect<Gauge<string>>): void =>
      void made.push({ name, metric: new Gauge({ name, help, labelNames, registers: reg, collect }) });
    // a counter's value from a total the grid keeps (prom-client counters only go up: reset, then add)
    const total = (c: Counter<string>, v: number): void => {
      c.reset();
      c.inc(v);
    };
    // a counter with one label whose values are totals read from one object (none while `of` gives none)
    const totals = <T>(name: string, help: string, label: string, of: () => T | undefined, parts: Array<[string, (x: T) => number]>): void =>
      counter(name, help, [label], function () {
        this.reset();
        const x = of();
        if (x !== undefined) for (const [value, read] of parts) this.inc({ [label]: value }, read(x));
      });

    counter('shardgrid_map_operations_total', 'Map operations run by this process\'s main thread, by map and kind (get, set, delete, atomic, read)', ['map', 'kind'], function () {
      this.reset();
      for (const [name, ops] of g.mapOps()) for (let k = 0; k < OP_KINDS.length; k++) if (ops[k] > 0) this.inc({ map: name, kind: OP_KINDS[k] }, ops[k]);
    });
    counter('shardgrid_hits_total', 'Reads that found their key', [], function () { total(this, stats().hits); });
    counter('shardgrid_misses_total', 'Reads that did not find their key', [], function () { total(this, stats().misses); });
    counter('shardgrid_evictions_total', 'Entries evicted under memory pressure', [], function () { total(this, stats().evictions); });
    counter('shardgrid_expirations_total', 'Entries removed because their time to live passed', [], function () { total(this, stats().expirations); });
    gauge('shardgrid_entries', 'Entries held in this process (backup copies included)', [], function () { this.set(stats().entries); });
    gauge('shardgrid_bytes_used', 'Bytes of the memory budget in use', [], function () { this.set(stats().bytesUsed); });
    gauge('shardgrid_bytes_limit', 'The memory budget, bytes', [], function () { this.set(stats().bytesLimit); });
    counter('shardgrid_lock_recoveries_total', 'Partition locks taken over from threads that died holding them', [], function () { total(this, stats().recoveries); });

    const resp = () => g.respServer?.stats;
    gauge('shardgrid_resp_connections', 'Open RESP client connections', [], function () { this.set(resp()?.connected ?? 0); });
    gauge('shardgrid_resp_blocked_clients', 'RESP connections waiting in a blocking command (CP.LOCK, CP.ACQUIRE without WAIT)', [], function () { this.set(g.respServer?.blocked ?? 0); });
    counter('shardgrid_resp_connections_total', 'RESP connections accepted', [], function () { total(this, resp()?.totalConnections ?? 0); });
    counter('shardgrid_resp_rejected_connections_total', 'RESP connections refused (maxClients, protected mode)', [], function () { total(this, resp()?.rejectedConnections ?? 0); });
    counter('shardgrid_resp_commands_total', 'RESP commands run, by command', ['command'], function () {
      this.reset();
      const s = resp();
      if (s !== undefined) for (const [name, n] of s.byCommand) this.inc({ command: name }, n);
    });
    counter('shardgrid_resp_errors_total', 'Error replies sent to RESP clients, whatever the error (as Redis\'s total_error_replies)', [], function () { total(this, resp()?.errorReplies ?? 0); });
    counter('shardgrid_resp_protocol_errors_total', 'RESP connections closed for a malformed request', [], function () { total(this, resp()?.protocolErrors ?? 0); });
    counter('shardgrid_resp_auth_failures_total', 'Failed RESP AUTH / HELLO AUTH attempts', [], function () { total(this, resp()?.authFailures ?? 0); });

    gauge('shardgrid_cluster_members', 'Cluster members this member sees, by status and kind', ['status', 'kind'], function () {
      this.reset();
      for (const m of stats().members ?? []) this.inc({ status: m.status, kind: m.lite ? 'lite' : 'data' });
    });
    gauge('shardgrid_cluster_primaries', 'Partitions whose primary is this member', [], function () {
      const s = stats();
      this.set(s.members?.find((m) => m.id === s.cluster?.memberId)?.primaries ?? 0);
    });
    gauge('shardgrid_partition_table_version', 'Version (metadata log index) of the partition table this member applies', [], function () { this.set(stats().cluster?.tableVersion ?? 0); });
    gauge('shardgrid_migrations_in_flight', 'Partitions of the current table still moving to a new owner', [], function () { this.set(stats().cluster?.migrating ?? 0); });
    counter('shardgrid_lock_waits_total', "Partition and primitive lock acquisitions by this process's main thread that found the lock held and waited", [], function () {
      total(this, lockWaits.count);
    });
    const rep = () => g.cluster?.replicas;
    totals('shardgrid_replicated_writes_total', 'Writes this member applied as primary and replicated, by outcome (acknowledged: every copy held it; failed: moved, timed out)', 'outcome', rep, [
      ['acknowledged', (r) => r.repStats.writes],
      ['failed', (r) => r.repStats.failed],
    ]);
    counter('shardgrid_replication_acks_total', "Copies' acknowledgements of this primary's replicated writes", [], function () { total(this, rep()?.repStats.copyAcks ?? 0); });
    counter('shardgrid_replication_misses_total', 'Copies that missed a replicated write of this primary (unreachable; the write waited for a table that dropped them)', [], function () { total(this, rep()?.repStats.copyMisses ?? 0); });
    gauge('shardgrid_unsettled_keys', 'Keys with a write being replicated (reads serve what the copies hold meanwhile)', [], function () { this.set(rep()?.unsettled.size ?? 0); });
    counter('shardgrid_eviction_ships_total', "Keys this member evicted as a partition's primary whose state it shipped to the partition's copies (they drop them too)", [], function () { total(this, rep()?.evictionShips ?? 0); });
    counter('shardgrid_eviction_journal_lost_total', "Evictions the eviction journal dropped (full, a key too long): copies keep such keys", [], function () { total(this, rep() === undefined ? 0 : g.store.journal.lostCount); });
    totals('shardgrid_touches_total', "Keys read on this member as primary whose access it sent to a copy (sent), and such keys a primary sent this member as a copy (applied)", 'direction', rep, [
      ['sent', (r) => r.touchShips],
      ['applied', (r) => r.touchesApplied],
    ]);
    totals('shardgrid_pressure_total', "Copies' pressure (\"The cluster's LRU\"): reports this member sent to the primaries of its copies while it evicted (sent), and entries it evicted as a primary on such reports (evicted)", 'direction', rep, [
      ['sent', (r) => r.pressureSent],
      ['evicted', (r) => r.pressureEvictions],
    ]);
    // round trips of requests to other members: a histogram kept by the transport, read at scrape
    const lat = 'shardgrid_remote_request_duration_seconds';
    const latHelp = 'Round trips of requests this member sent to other members that were answered, by kind (get, mget, set, rep: a replicated write to a copy; or the message type)';
    made.push({ name: lat, metric: {
      name: lat,
      help: latHelp,
      type: 'histogram',
      aggregator: 'sum',
      get: async () => {
        const values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }> = [];
        for (const [kind, s] of g.cluster?.transport?.latency.series ?? []) {
          let acc = 0;
          for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
            acc += s.counts[i];
            values.push({ metricName: `${lat}_bucket`, labels: { le: LATENCY_BUCKETS[i], kind }, value: acc });
          }
          values.push({ metricName: `${lat}_bucket`, labels: { le: '+Inf', kind }, value: s.count });
          values.push({ metricName: `${lat}_sum`, labels: { kind }, value: s.sum });
          values.push({ metricName: `${lat}_count`, labels: { kind }, value: s.count });
        }
        return { name: lat, help: latHelp, type: 'histogram', aggregator: 'sum', values };
      },
      reset: () => undefined,
    } as never as Metric });
    const transport = () => g.cluster?.transport?._stats;
    totals('shardgrid_transport_frames_total', 'Frames exchanged with other members, by direction', 'direction', transport, [
      ['out', (t) => t.framesOut],
      ['in', (t) => t.framesIn],
    ]);
    totals('shardgrid_transport_messages_total', 'Messages (requests, replies, records) exchanged with other members, by direction', 'direction', transport, [
      ['out', (t) => t.messagesOut],
      ['in', (t) => t.messagesIn],
    ]);
    return made;
  }

  /** The grid's metrics in Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * @internal Serves GET /metrics on host:port (options.metrics; createGrid). Anyone who reaches
   * the port may connect (no secret), so the server is bounded: at most o.maxConnections sockets,
   * a request's headers within 5 s (HTTP_LIMITS), SCRAPES_PER_SECOND. With node:http's defaults (no cap, 60 s for
   * the headers, checked every 30 s) 20,000 idle sockets took every file descriptor of the process,
   * and the RESP endpoint closed new clients unanswered (native-notes, "/metrics").
   */
  listen(o: ResolvedMetricsOptions): Promise<AddressInfo> {
    let tokens = SCRAPE_BURST;
    let filledAt = performance.now();
    const server = createServer(HTTP_LIMITS, (req, res) => {
      if (req.method !== 'GET' || (req.url !== '/metrics' && !req.url?.startsWith('/metrics?'))) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
        return;
      }
      const now = performance.now();
      tokens = Math.min(SCRAPE_BURST, tokens + ((now - filledAt) * SCRAPES_PER_SECOND) / 1000);
      filledAt = now;
      if (tokens < 1) {
        res.writeHead(429, { 'content-type': 'text/plain', 'retry-after': '1' }).end(`more than ${SCRAPES_PER_SECOND} scrapes a second\n`);
        return;
      }
      tokens--;
      this.text().then(
        (body) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(body),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
      );
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    server.maxConnections = o.maxConnections;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', (e) => reject(new InvalidOptionError(`options.metrics: cannot listen on ${o.host}:${o.port}: ${e.message}`, { option: 'options.metrics.port' })));
      server.listen(o.port, o.host, () => {
        this.bound = server.address() as AddressInfo;
        resolve(this.bound);
      });
    });
  }

  /** Where /metrics is served, or undefined. */
  get address(): { host: string; port: number } | undefined {
    return this.bound === undefined ? undefined : { host: this.bound.address, port: this.bound.port };
  }

  /**
   * @internal Takes the grid's metrics off every registry they are on (a closed grid reports
   * nothing, and its names are free for the grid that replaces it) and stops the /metrics server
   * (grid.close()).
   */
  close(): Promise<void> {
    this.closed = true;
    for (const [registry, made] of this.registered) {
      // only what is still this grid's: the application may have removed and reused a name
      for (const m of made) if (registry.getSingleMetric(m.name) === m.metric) registry.removeSingleMetric(m.name);
    }
    this.registered.clear();
    const s = this.server;
    if (s === undefined) return Promise.resolve();
    return new Promise((r) => {
      s.close(() => r());
      s.closeAllConnections();
    });
  }
}
