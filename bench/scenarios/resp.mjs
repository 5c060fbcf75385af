// redis-benchmark against shardgrid's RESP endpoint and against redis-server, in the same run:
// `redis-benchmark -t get,set,incr,mget -n N -r 1000000 -d 100 -c 50` and the same with `-P 16`
// (issue 14). N is 500,000 (50,000 with --quick; SHARDGRID_RESP_BENCH_N overrides). Two targets:
// a single-process grid made in this process (workers 2, 256MB), then this process as one data
// member of a 3-member cluster (the other two are child processes; backups 1); redis-server is the one the suite
// started (or this scenario's own when run directly). Skips with a message when redis-benchmark
// (Debian package redis-tools) is missing. Note: redis-benchmark 7.0 has no "mget" test (it has
// "mset"); `-t ...,mget` runs get, set and incr only, and the table says so.
import { spawn, spawnSync } from 'node:child_process';
import { scenario } from '../lib/harness.mjs';
import { createGrid } from '../../dist/index.js';
import { SECRET, startMember, waitSettled } from '../lib/cluster.mjs';

const TESTS = 'get,set,incr,mget';

function runBenchmark(port, n, pipeline) {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', TESTS, '-n', String(n), '-r', '1000000', '-d', '100', '-c', '50', '--csv'];
  if (pipeline > 1) args.push('-P', String(pipeline));
  return new Promise((resolve, reject) => {
    const p = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`redis-benchmark exited ${code}: ${err.slice(-400)}`));
      // "test","rps","avg_latency_ms",...
      const rps = {};
      for (const line of out.split('\n')) {
        const m = /^"([A-Z]+)[^"]*","([0-9.]+)"/.exec(line);
        if (m !== null) rps[m[1].toLowerCase()] = Number(m[2]);
      }
      resolve({ command: `redis-benchmark ${args.join(' ')}`, rps });
    });
  });
}

await scenario(
  {
    name: 'resp',
    title: 'redis-benchmark: shardgrid RESP endpoint vs redis-server',
    description: `redis-benchmark -t ${TESTS} -n N -r 1000000 -d 100 -c 50, and with -P 16, against both`,
  },
  async (ctx) => {
    if (spawnSync('redis-benchmark', ['--version']).error !== undefined) {
      ctx.note('skipped: redis-benchmark is not installed (apt-get install -y redis-tools)');
      return;
    }
    if (!ctx.redisInfo) {
      ctx.note(`skipped: ${ctx.redisSkip ?? 'redis-server is not available'} (apt-get install -y redis-server)`);
      return;
    }
    const n = Number(process.env.SHARDGRID_RESP_BENCH_N ?? (ctx.quick ? 50_000 : 500_000));
    const rows = [];
    // 1. a single-process grid; 2. a data member of a 3-member cluster (this process, with the
    // other two in child processes, backups 1): keys whose primary is elsewhere cross a loopback
    // WebSocket, and every write waits for its backup's acknowledgement
    for (const target of ['single', 'cluster']) {
      let grid;
      let members = [];
      try {
        if (target === 'single') grid = await createGrid({ workers: 2, memory: '256MB', resp: { port: 0 } });
        else {
          ctx.progress('starting 2 cluster members (this process is the third)');
          const m0 = await startMember([]);
          const m1 = await startMember([m0.url]);
          members = [m0, m1];
          grid = await createGrid({ workers: 1, memory: '256MB', resp: { port: 0 }, cluster: { host: '127.0.0.1', port: 0, seeds: [m0.url], secret: SECRET, backups: 1 } });
          await waitSettled(grid, 3, 30_000);
        }
        for (const pipeline of [1, 16]) {
          ctx.progress(`${target}: redis-benchmark -P ${pipeline}`);
          const sg = await runBenchmark(grid.resp.port, n, pipeline);
          const rd = await runBenchmark(ctx.redisInfo.port, n, pipeline);
          for (const t of Object.keys(rd.rps)) {
            const ratio = (sg.rps[t] ?? 0) / rd.rps[t];
            rows.push({ target, pipeline, test: t, shardgrid: sg.rps[t] ?? 0, redis: rd.rps[t], ratio });
            ctx.note(`${target === 'single' ? 'single-process grid' : 'member of a 3-member cluster'}, -P ${pipeline} ${t}: shardgrid ${Math.round(sg.rps[t] ?? 0)} req/s, redis-server ${Math.round(rd.rps[t])} req/s, ratio ${ratio.toFixed(2)}`);
          }
          ctx.note(`command: ${sg.command.replace(`-p ${grid.resp.port}`, '-p <port>')}`);
        }
      } finally {
        await grid?.close();
        for (const m of members) m.proc.kill('SIGTERM');
      }
    }
    if (!rows.some((r) => r.test === 'mget')) ctx.note('redis-benchmark has no "mget" test: -t mget ran nothing');
    ctx.extra = { ...(ctx.extra ?? {}), resp: rows };
    // one table, two rows per measurement (shardgrid, redis-server): the report's issue 14 targets
    // divide them (row ids `<target>-p<P>-<test>-sg` and `-redis`)
    const label = (r) => `${r.target === 'single' ? 'single-process grid' : 'member of a 3-member cluster'}, -P ${r.pipeline} ${r.test.toUpperCase()}`;
    const table = [];
    for (const r of rows) {
      const id = `${r.target}-p${r.pipeline}-${r.test}`;
      table.push({ id: `${id}-sg`, name: `shardgrid: ${label(r)}`, status: 'ok', opsPerSec: r.shardgrid, ratio: r.ratio });
      table.push({ id: `${id}-redis`, name: `redis-server: ${label(r)}`, status: 'ok', opsPerSec: r.redis });
    }
    ctx.table({
      id: 'resp',
      title: `resp: redis-benchmark -t ${TESTS} -n ${n} -r 1000000 -d 100 -c 50 [-P 16], the same run against each`,
      kind: 'custom',
      columns: [
        { key: 'name', label: 'server and test', fmt: 'text' },
        { key: 'opsPerSec', label: 'requests/s', fmt: 'rate' },
        { key: 'ratio', label: 'shardgrid ÷ redis-server', fmt: 'ratio' },
      ],
      rows: table,
      note: 'Requests per second as redis-benchmark reports them (--csv). redis-benchmark runs on the same 2 cores as the server it measures.',
    });
  },
);
