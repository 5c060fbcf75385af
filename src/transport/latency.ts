/**
 * Round-trip times of requests to other members, by kind (`get`, `mget`, `set`, `rep` for a
 * replicated write's acknowledgement, or the generic message type such as `grid.op`), in fixed
 * buckets: what `shardgrid_remote_request_duration_seconds` exposes (metrics.ts). An observation
 * is two clock reads, a scan of 16 bounds and two additions; nothing allocates after a kind's
 * first request.
 */

/** Upper bounds of the buckets, seconds (Prometheus's convention), from 50 µs to 10 s. */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

export interface LatencySeries {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class LatencyHistogram {
  /** By kind; the number of kinds is bounded by the protocol's message types. */
  readonly series = new Map<string, LatencySeries>();

  /** Records one round trip of `ms` milliseconds. */
  observe(kind: string, ms: number): void {
    let s = this.series.get(kind);
    if (s === undefined) this.series.set(kind, (s = { counts: new Float64Array(LATENCY_BUCKETS.length + 1), sum: 0, count: 0 }));
    const sec = ms / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && sec > LATENCY_BUCKETS[i]) i++;
    s.counts[i]++;
    s.sum += sec;
    s.count++;
  }
}
