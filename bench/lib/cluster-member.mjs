// A data member for the cluster bench: createGrid with options.cluster; prints its url as one
// JSON line on stdout and runs until killed. argv[2] = JSON { seeds, profile? }; the cluster
// secret comes from SHARDGRID_SECRET in the environment (never argv: every user can read argv).
// With `profile` (a file path), SIGUSR2 starts the CPU profiler of the main thread and the next
// SIGUSR2 stops it and writes the profile there, then prints {"profiled": path} on stdout
// (bench/profile-remote.mjs). SIGHUP prints the transport's counters as {"stats": {...}}
// (frames and messages per direction: bench/cp-frames.mjs; round trips by kind; garbage
// collections: bench/profile-remote.mjs).
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { createGrid } from '../../dist/index.js';
import { startProfile } from './profiler.mjs';

const cfg = JSON.parse(process.argv[2]);
process.on('warning', () => undefined);
const grid = await createGrid({ workers: 1, memory: '128MB', cluster: { host: '127.0.0.1', port: 0, seeds: cfg.seeds, secret: process.env.SHARDGRID_SECRET, backups: 1 } });
process.stdout.write(JSON.stringify({ url: grid.cluster.url, id: grid.cluster.memberId }) + '\n');
const stop = () => void grid.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// bytes: the sockets of the links open now (a diagnostic reach into the transport's private map)
const bytes = (k) => [...(grid.cluster.transport.links?.values() ?? [])].reduce((a, l) => a + (l.ws?._socket?.[k] ?? 0), 0);
// rtt: round trips of this member's requests by kind (`rep`: a replicated write's acknowledgement), count and total seconds
const rtt = () => Object.fromEntries([...(grid.cluster.transport.latency?.series ?? [])].map(([k, s]) => [k, { count: s.count, sum: s.sum }]));
// gc: this process's collections so far, scavenges (minor) and the rest, count and pause ms
const gc = { minor: 0, minorMs: 0, other: 0, otherMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) {
      gc.minor++;
      gc.minorMs += e.duration;
    } else {
      gc.other++;
      gc.otherMs += e.duration;
    }
  }
}).observe({ entryTypes: ['gc'] });
process.on('SIGHUP', () => process.stdout.write(JSON.stringify({ stats: { ...grid.cluster.transport._stats, bytesOut: bytes('bytesWritten'), bytesIn: bytes('bytesRead'), leader: grid.cluster.meta?.isLeader() ?? null, rtt: rtt(), gc } }) + '\n'));
if (cfg.profile) {
  let stopProfile;
  process.on('SIGUSR2', async () => {
    if (stopProfile === undefined) {
      stopProfile = await startProfile({ intervalUs: 100 });
      return;
    }
    const s = stopProfile;
    stopProfile = undefined;
    writeFileSync(cfg.profile, JSON.stringify(await s()));
    process.stdout.write(JSON.stringify({ profiled: cfg.profile }) + '\n');
  });
}
