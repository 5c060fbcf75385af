// Presentation of results: text tables for the terminal, the target checks, and a self-contained
// HTML page with hand-written SVG bar charts (no external assets, no scripts).

import { formatSize } from '../../dist/size.js';

// ── number formats ──────────────────────────────────────────────────────────────────────────────

export function fmtRate(x) {
  if (!Number.isFinite(x)) return '';
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`;
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(1);
}

/** Sizes as the library writes them (src/size.ts, 'report' style: '16.1 MiB', '23.54 GiB'). */
export function fmtBytes(x) {
  return formatSize(x, 'report');
}

export function fmtUs(x) {
  if (!Number.isFinite(x)) return '';
  if (x >= 1000) return `${(x / 1000).toFixed(2)} ms`;
  if (x >= 100) return x.toFixed(0);
  if (x >= 10) return x.toFixed(1);
  return x.toFixed(3);
}

const FORMATS = {
  text: (v) => (v === undefined || v === null ? '' : String(v)),
  rate: fmtRate,
  us: fmtUs,
  pct: (v) => (Number.isFinite(v) ? `${v.toFixed(1)}` : ''),
  percent: (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)} %` : ''),
  int: (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : ''),
  ratio: (v) => (Number.isFinite(v) ? `${v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toPrecision(2)}x` : ''),
  bytes: fmtBytes,
  num1: (v) => (Number.isFinite(v) ? v.toFixed(1) : ''),
};

export function cell(row, col) {
  if (row.status !== 'ok' && col.fmt !== 'text') return '';
  return FORMATS[col.fmt ?? 'text'](row[col.key]);
}

// ── text tables ─────────────────────────────────────────────────────────────────────────────────

/** A plain-text table: first column left-aligned, the rest right-aligned; skipped/errored rows say so. */
export function formatTable(table) {
  const cols = table.columns;
  const body = table.rows.map((r) => {
    if (r.status !== 'ok') {
      const out = cols.map(() => '');
      out[0] = r.name;
      out[1] = r.status;
      return out;
    }
    return cols.map((c) => cell(r, c));
  });
  const head = cols.map((c) => c.label);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const lines = [line(head), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)];
  // One line per distinct reason (all Redis rows share "not installed", say).
  const reasons = new Map();
  for (const r of table.rows) {
    if (r.status === 'ok' || !r.note) continue;
    const k = `${r.status} — ${r.note}`;
    reasons.set(k, [...(reasons.get(k) ?? []), r.name]);
  }
  const notes = [...reasons].map(([k, names]) => `  ${names.length > 1 ? `${names.length} rows` : names[0]}: ${k}`);
  return [`${table.title}`, ...lines.map((l) => `  ${l}`), ...(table.note ? [`  ${table.note}`] : []), ...notes].join('\n');
}

export function printScenario(result, log = console.log) {
  log(`\n━━ ${result.name} — ${result.title} (${(result.durationMs / 1000).toFixed(1)} s)`);
  if (result.status !== 'ok') log(`  FAILED: ${(result.error ?? '').split('\n').slice(0, 6).join('\n  ')}`);
  for (const t of result.tables ?? []) log(`\n${formatTable(t)}`);
  for (const n of result.notes ?? []) log(`  note: ${n}`);
  for (const w of result.warnings ?? []) log(`  WARNING: ${w}`);
}

// ── targets ─────────────────────────────────────────────────────────────────────────────────────

/**
 * The performance targets of issue 3, each a ratio of two rows' ops/s. The sync lru-cache rows are
 * the reference (not the "awaited" rows), as the targets are stated: "get ≥ 0.5x lru-cache get"
 * compares the awaited public `get` with lru-cache's synchronous `get`.
 * `variants` are printed under their target and are NOT the target: the same ratio for the
 * synchronous getSync, and awaited get against an awaited lru-cache get (both sides pay for a
 * Promise). A variant without `min` is a reference figure: `floor` is the Promise floor, what an
 * awaited call of lru-cache's own get reaches against the sync one, i.e. the ceiling of any
 * Promise-returning get in this harness.
 */
const getVariants = (scenario, what, { sg, sgSync, lru, lruAwaited }) => [
  { id: 'getsync', label: `shardgrid getSync (${what}) ≥ 0.5x lru-cache get`, min: 0.5, num: [scenario, sgSync], den: [scenario, lru] },
  { id: 'awaited', label: `shardgrid get (${what}) ≥ 0.5x lru-cache get (awaited): both sides awaited`, min: 0.5, num: [scenario, sg], den: [scenario, lruAwaited] },
  { id: 'floor', label: 'Promise floor: lru-cache get (awaited) ÷ lru-cache get', num: [scenario, lruAwaited], den: [scenario, lru] },
];

export const TARGETS = [
  {
    id: 'get-100b', label: 'shardgrid get (100 B, awaited) ≥ 0.5x lru-cache get', min: 0.5, num: ['get-hit', 'shardgrid'], den: ['get-hit', 'lru'],
    variants: getVariants('get-hit', '100 B', { sg: 'shardgrid', sgSync: 'shardgrid-sync', lru: 'lru', lruAwaited: 'lru-awaited' }),
  },
  { id: 'set-100b', label: 'shardgrid set (100 B) ≥ 0.3x lru-cache set', min: 0.3, num: ['set', 'shardgrid'], den: ['set', 'lru'] },
  // Single get: the faster of get-hit's row and batch-100's own single-get row (the stricter test;
  // batch-100's single get runs after getMany in the same process and is often slower).
  { id: 'getmany-per-key', label: 'shardgrid getMany(100) per key ≥ 1x single get', min: 1, num: ['batch-100', 'shardgrid-getmany'], den: [['get-hit', 'shardgrid'], ['batch-100', 'shardgrid-get']] },
  {
    id: 'object-get', label: 'shardgrid get (small object, awaited) ≥ 0.5x lru-cache get', min: 0.5, num: ['values-object', 'shardgrid-get'], den: ['values-object', 'lru-get'],
    variants: getVariants('values-object', 'small object', { sg: 'shardgrid-get', sgSync: 'shardgrid-getsync', lru: 'lru-get', lruAwaited: 'lru-get-awaited' }),
  },
  { id: 'threads-2x', label: 'shardgrid 2 threads ≥ 1.7x one thread (aggregate ops/s)', min: 1.7, num: ['threads', 'shardgrid-2'], den: ['threads', 'shardgrid-1'] },
  // issue 12: the key-count sweep (bench/lib/sizes.mjs), 100 B strings, same process as the peers
  { id: 'i12-1m-uniform-getsync', label: 'issue 12: 1M keys uniform, getSync ≥ 5x lru-cache get', min: 5, num: ['sizes-1m', 'uniform-sg-getsync'], den: ['sizes-1m', 'uniform-lru-get'] },
  { id: 'i12-1m-uniform-get', label: 'issue 12: 1M keys uniform, get ≥ 2x lru-cache get', min: 2, num: ['sizes-1m', 'uniform-sg-get'], den: ['sizes-1m', 'uniform-lru-get'] },
  { id: 'i12-1m-uniform-set', label: 'issue 12: 1M keys uniform, set ≥ 1.0x lru-cache set', min: 1, num: ['sizes-1m', 'uniform-sg-set'], den: ['sizes-1m', 'uniform-lru-set'] },
  { id: 'i12-1m-uniform-setsync', label: 'issue 12: 1M keys uniform, setSync ≥ 1.0x lru-cache set', min: 1, num: ['sizes-1m', 'uniform-sg-setsync'], den: ['sizes-1m', 'uniform-lru-set'] },
  { id: 'i12-1m-scan-get', label: 'issue 12: 1M keys round-robin scan, get ≥ 1.0x lru-cache get', min: 1, num: ['sizes-1m', 'scan-sg-get'], den: ['sizes-1m', 'scan-lru-get'] },
  { id: 'i12-10k-getsync', label: 'issue 12: 10,000 keys round-robin, getSync ≥ 0.7x lru-cache get', min: 0.7, num: ['sizes-10k', 'scan-sg-getsync'], den: ['sizes-10k', 'scan-lru-get'] },
  { id: 'i12-10k-set', label: 'issue 12: 10,000 keys round-robin, set ≥ 0.3x lru-cache set', min: 0.3, num: ['sizes-10k', 'scan-sg-set'], den: ['sizes-10k', 'scan-lru-set'] },
  // issue 12: remote through a lite member (cluster-remote; the set rows after the request records were filled)
  { id: 'i12-remote-get-c1', label: 'issue 12: remote get through a lite member, c=1 ≥ 1.0x Redis GET (ioredis)', min: 1, num: ['cluster-remote', 'remote-c1'], den: ['cluster-remote', 'redis-c1'] },
  { id: 'i12-remote-set-c1', label: 'issue 12: remote set through a lite member, c=1 ≥ 0.7x Redis SET (ioredis)', min: 0.7, num: ['cluster-remote', 'remote-set-c1'], den: ['cluster-remote', 'redis-set-c1'] },
  { id: 'i12-remote-get-c64', label: 'issue 12: remote get through a lite member, c=64 ≥ 3x Redis GET (ioredis)', min: 3, num: ['cluster-remote', 'remote-c64'], den: ['cluster-remote', 'redis-c64'] },
  // issue 13 (in-process half): uncontended lock+unlock costs ≤ 3x a bare Atomics CAS mutex
  {
    id: 'i13-lock-uncontended', label: 'issue 13: grid.cp lock+unlock (tryLockSync+unlockSync) costs ≤ 3x a bare Atomics CAS mutex (ratio ≥ 0.33)', min: 1 / 3, num: ['coordination', 'sg-lock-sync'], den: ['coordination', 'bare-cas'],
    variants: [
      { id: 'leased', label: 'with leaseMs (slot mutex path) ÷ bare CAS mutex', num: ['coordination', 'sg-lock-leased'], den: ['coordination', 'bare-cas'] },
      { id: 'awaited', label: 'await lock()+unlock() ÷ bare CAS mutex', num: ['coordination', 'sg-lock-awaited'], den: ['coordination', 'bare-cas'] },
      { id: 'long', label: 'atomicLong.incrementAndGetSync ÷ Atomics.add (BigInt64Array)', num: ['coordination', 'sg-incr-sync'], den: ['coordination', 'bare-add'] },
    ],
  },
  // issue 13 (cluster half): a lite member of a 3-member cluster against Redis's lock pattern and INCR (ioredis), c=64
  { id: 'i13-cluster-lock-c64', label: 'issue 13: 3-member cluster, grid.cp lock+unlock via a lite member, c=64 ≥ 0.5x Redis SET NX PX + compare-and-delete', min: 0.5, num: ['coordination', 'cl-lock-c64'], den: ['coordination', 'redis-lock-c64'] },
  { id: 'i13-cluster-incr-c64', label: 'issue 13: 3-member cluster, grid.cp incrementAndGet via a lite member, c=64 ≥ 0.5x Redis INCR', min: 0.5, num: ['coordination', 'cl-incr-c64'], den: ['coordination', 'redis-incr-c64'] },
  { id: 'i12-10k-setsync', label: 'issue 12: 10,000 keys round-robin, setSync ≥ 0.5x lru-cache set', min: 0.5, num: ['sizes-10k', 'scan-sg-setsync'], den: ['sizes-10k', 'scan-lru-set'] },
  // issue 14: redis-benchmark -c 50 against the RESP endpoint and redis-server in the same run (scenario resp)
  ...['single', 'cluster'].flatMap((target) =>
    [1, 16].flatMap((p) =>
      ['get', 'set'].map((test) => ({
        id: `i14-${target}-p${p}-${test}`,
        label: `issue 14: RESP ${target === 'single' ? 'single-process grid' : 'member of a 3-member cluster'}, redis-benchmark -c 50${p > 1 ? ` -P ${p}` : ''} ${test.toUpperCase()} ≥ ${p > 1 ? '0.5' : '0.8'}x redis-server`,
        min: p > 1 ? 0.5 : 0.8,
        num: ['resp', `${target}-p${p}-${test}-sg`],
        den: ['resp', `${target}-p${p}-${test}-redis`],
      })),
    ),
  ),
];

function findRow(scenarios, [scenarioName, rowId]) {
  const s = scenarios.find((x) => x.name === scenarioName);
  if (!s) return undefined;
  for (const t of s.tables ?? []) {
    const r = t.rows.find((x) => x.id === rowId);
    if (r) return r;
  }
  return undefined;
}

function checkOne(t, scenarios, variantOf) {
  const base = { id: variantOf ? `${variantOf}/${t.id}` : t.id, label: t.label, min: t.min, ...(variantOf ? { variantOf } : {}) };
  const a = findRow(scenarios, t.num);
  const dens = (Array.isArray(t.den[0]) ? t.den : [t.den]).map((d) => findRow(scenarios, d)).filter((r) => r?.status === 'ok');
  const b = dens.sort((x, y) => y.opsPerSec - x.opsPerSec)[0];
  if (!a || !b || a.status !== 'ok' || b.status !== 'ok') return { ...base, status: 'not measured' };
  const value = a.opsPerSec / b.opsPerSec;
  return {
    ...base,
    value,
    status: t.min === undefined ? 'reference' : value >= t.min ? 'reached' : 'missed',
    numerator: { row: a.name, opsPerSec: a.opsPerSec },
    denominator: { row: b.name, opsPerSec: b.opsPerSec },
  };
}

/** One entry per target, each followed by its variants (marked with `variantOf`: not targets). */
export function checkTargets(scenarios) {
  return TARGETS.flatMap((t) => [checkOne(t, scenarios), ...(t.variants ?? []).map((v) => checkOne(v, scenarios, t.id))]);
}

/** "0.52x (a 1.2 M/s ÷ b 2.3 M/s)", or "not measured". */
export function targetFigure(t) {
  if (t.status === 'not measured') return 'not measured in this run';
  return `${t.value.toFixed(2)}x (${t.numerator.row} ${fmtRate(t.numerator.opsPerSec)}/s ÷ ${t.denominator.row} ${fmtRate(t.denominator.opsPerSec)}/s)`;
}

const MARKS = { reached: 'reached', missed: 'MISSED ', reference: ' ref.  ', 'not measured': ' n/a   ' };

export function formatTargets(targets) {
  const lines = ['Targets (issues 3, 12, 13 and 14; indented lines are variants for reference, not the targets):'];
  for (const t of targets) {
    const indent = t.variantOf ? '      · ' : '  ';
    lines.push(`${indent}[${MARKS[t.status]}] ${t.label}: ${targetFigure(t)}`);
  }
  return lines.join('\n');
}

// ── HTML ────────────────────────────────────────────────────────────────────────────────────────

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

const SUBJECT_COLORS = {
  shardgrid: '#2b6cb0',
  Map: '#718096',
  'lru-cache': '#dd6b20',
  redis: '#c53030',
};

/** A horizontal bar chart of one metric, linear scale from zero, value printed at each bar. */
export function svgBarChart(table) {
  const { key, label, fmt } = table.chart;
  const format = FORMATS[fmt ?? 'rate'];
  const rows = table.rows;
  const labelW = 250;
  const barW = 400;
  const valueW = 110;
  const rowH = 22;
  const top = 24;
  const width = labelW + barW + valueW;
  const height = top + rows.length * rowH + 8;
  const max = Math.max(0, ...rows.filter((r) => r.status === 'ok' && Number.isFinite(r[key])).map((r) => r[key]));
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${esc(`${table.title}: ${label}`)}">`,
    `<text x="${labelW}" y="15" font-size="12" fill="#4a5568">${esc(label)} (linear scale; longer is ${table.chart.lowerIsBetter ? 'worse' : 'better'})</text>`,
    `<line x1="${labelW}" y1="${top - 4}" x2="${labelW}" y2="${height - 4}" stroke="#a0aec0"/>`,
  ];
  rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(`<text x="${labelW - 8}" y="${y + 15}" font-size="12" text-anchor="end" fill="#1a202c">${esc(r.name)}</text>`);
    if (r.status !== 'ok' || !Number.isFinite(r[key])) {
      parts.push(`<text x="${labelW + 6}" y="${y + 15}" font-size="12" fill="#a0aec0" font-style="italic">${esc(r.status === 'ok' ? 'n/a' : r.status)}</text>`);
      return;
    }
    const w = max > 0 ? Math.max(1, (r[key] / max) * barW) : 1;
    const color = SUBJECT_COLORS[r.subject] ?? '#4a5568';
    parts.push(`<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"${r.sg ? '' : ' fill-opacity="0.8"'}><title>${esc(`${r.name}: ${format(r[key])}`)}</title></rect>`);
    parts.push(`<text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="12" fill="#1a202c">${esc(format(r[key]))}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function htmlTable(table) {
  const head = table.columns.map((c, i) => `<th${i ? ' class="n"' : ''}>${esc(c.label)}</th>`).join('');
  const body = table.rows
    .map((r) => {
      if (r.status !== 'ok') {
        return `<tr class="skip"><td>${esc(r.name)}</td><td colspan="${table.columns.length - 1}">${esc(r.status)}${r.note ? ` — ${esc(r.note)}` : ''}</td></tr>`;
      }
      return `<tr${r.sg ? ' class="sg"' : ''}>${table.columns.map((c, i) => `<td${i ? ' class="n"' : ''}>${esc(cell(r, c))}</td>`).join('')}</tr>`;
    })
    .join('\n');
  return `<table><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table>`;
}

export function renderHtml(report) {
  const m = report.machine;
  const targets = report.targets
    .map((t) => {
      const cls = t.status === 'reached' ? 'ok' : t.status === 'missed' ? 'bad' : 'na';
      const label = t.variantOf ? `&nbsp;&nbsp;· variant: ${esc(t.label)}` : esc(t.label);
      return `<tr${t.variantOf ? ' class="note"' : ''}><td>${label}</td><td class="${cls}">${esc(t.status)}</td><td>${esc(targetFigure(t))}</td></tr>`;
    })
    .join('\n');
  const sections = report.scenarios
    .map((s) => {
      const tables = (s.tables ?? [])
        .map((t) => `<h3>${esc(t.title)}</h3>\n${htmlTable(t)}\n${t.note ? `<p class="note">${esc(t.note)}</p>` : ''}\n<div class="chart">${t.chart ? svgBarChart(t) : ''}</div>`)
        .join('\n');
      const notes = [...(s.notes ?? []).map((n) => `<p class="note">${esc(n)}</p>`), ...(s.warnings ?? []).map((w) => `<p class="warn">warning: ${esc(w)}</p>`)].join('\n');
      const failed = s.status !== 'ok' ? `<pre class="warn">${esc(s.error ?? s.status)}</pre>` : '';
      return `<section id="${esc(s.name)}"><h2>${esc(s.name)} — ${esc(s.title)}</h2>\n<p>${esc(s.description ?? '')} <span class="note">(${(s.durationMs / 1000).toFixed(1)} s, fresh process)</span></p>\n${failed}\n${tables}\n${notes}</section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shardgrid benchmarks — ${esc(report.startedAt)}</title>
<style>
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a202c;max-width:1000px;margin:2em auto;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #e2e8f0}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:3px 10px;border-bottom:1px solid #edf2f7;text-align:left}
th{background:#f7fafc}.n{text-align:right;font-variant-numeric:tabular-nums}tr.sg td{font-weight:600}
tr.skip td{color:#a0aec0;font-style:italic}.note{color:#4a5568;font-size:.92em}.warn{color:#c53030}
.ok{color:#276749;font-weight:600}.bad{color:#c53030;font-weight:600}.na{color:#a0aec0}
.chart svg{max-width:100%;height:auto;font-family:inherit}
.legend span{display:inline-block;margin-right:1em}.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-1px}
</style></head><body>
<h1>shardgrid benchmarks</h1>
<p>${esc(report.mode)} run, ${esc(report.startedAt)}, ${(report.durationMs / 1000).toFixed(0)} s. Machine: ${esc(m.cpu)}, ${m.cores} cores (availableParallelism ${m.availableParallelism}), ${fmtBytes(m.totalMemory)} RAM, ${esc(m.platform)} ${esc(m.arch)}, Node ${esc(m.node)}, Redis ${esc(m.redis ?? 'not available')}${m.busyCoresAtStart !== undefined ? `; ${m.busyCoresAtStart.toFixed(1)} cores busy with other work at the start` : ''}.</p>
<p class="note">Each scenario ran in a fresh Node process; every peer of a scenario was measured in that same process with tinybench ${esc(report.tinybench ?? '')}. "shardgrid ÷ this" is shardgrid's ops/s divided by the row's ops/s (above 1: shardgrid is faster). Fast operations are timed in batches (see "batch"); p99 is then over per-batch means.</p>
<p class="legend">${Object.entries(SUBJECT_COLORS).map(([k, c]) => `<span><i style="background:${c}"></i>${esc(k)}</span>`).join('')}</p>
<h2>Targets</h2>
<table><thead><tr><th>target</th><th>status</th><th>figures</th></tr></thead><tbody>
${targets}
</tbody></table>
<p class="note">Scenarios: ${report.scenarios.map((s) => `<a href="#${esc(s.name)}">${esc(s.name)}</a>`).join(' · ')}</p>
${sections}
</body></html>
`;
}

// ── README headline (markdown) ──────────────────────────────────────────────────────────────────

const HEADLINE = [
  { label: 'get, 100 B string', scenario: 'get-hit', ids: { sg: 'shardgrid', lru: 'lru', lruAwaited: 'lru-awaited', map: 'map', redis: 'redis' } },
  { label: 'getSync, 100 B string', scenario: 'get-hit', ids: { sg: 'shardgrid-sync', lru: 'lru', lruAwaited: 'lru-awaited', map: 'map' } },
  { label: 'get, absent key', scenario: 'get-miss', ids: { sg: 'shardgrid', lru: 'lru', lruAwaited: 'lru-awaited', map: 'map', redis: 'redis' } },
  { label: 'set, 100 B string', scenario: 'set', ids: { sg: 'shardgrid', lru: 'lru', lruAwaited: 'lru-awaited', map: 'map', redis: 'redis' } },
  { label: 'get, 16 B string', scenario: 'values-16b', ids: { sg: 'shardgrid-get', lru: 'lru-get', lruAwaited: 'lru-get-awaited', map: 'map-get', redis: 'redis-get' } },
  { label: 'get, 4 KB string', scenario: 'values-4kb', ids: { sg: 'shardgrid-get', lru: 'lru-get', lruAwaited: 'lru-get-awaited', map: 'map-get', redis: 'redis-get' } },
  { label: 'get, small object', scenario: 'values-object', ids: { sg: 'shardgrid-get', lru: 'lru-get', lruAwaited: 'lru-get-awaited', map: 'map-get', redis: 'redis-get' } },
  { label: 'getSync, small object', scenario: 'values-object', ids: { sg: 'shardgrid-getsync', lru: 'lru-get', lruAwaited: 'lru-get-awaited', map: 'map-get' } },
  { label: 'set, small object', scenario: 'values-object', ids: { sg: 'shardgrid-set', lru: 'lru-set', lruAwaited: 'lru-set-awaited', map: 'map-set', redis: 'redis-set' } },
  { label: 'get/set 90/10, Zipf keys', scenario: 'mix-zipf', ids: { sg: 'shardgrid', lru: 'lru', lruAwaited: 'lru-awaited', map: 'map', redis: 'redis' } },
  { label: 'getMany(100), per key', scenario: 'batch-100', ids: { sg: 'shardgrid-getmany', lru: 'lru-getmany', map: 'map-getmany', redis: 'redis-mget' } },
  { label: 'setMany(100), per key', scenario: 'batch-100', ids: { sg: 'shardgrid-setmany', lru: 'lru-setmany', map: 'map-setmany', redis: 'redis-mset' } },
  { label: 'set with ttl', scenario: 'ttl', ids: { sg: 'shardgrid-set', lru: 'lru-set', lruAwaited: 'lru-set-awaited', redis: 'redis-set' } },
  { label: 'get, 64 concurrent (Redis: auto-pipelining)', scenario: 'concurrency', ids: { sg: 'shardgrid-c64', redis: 'redis-ap-c64' } },
];

function rowOf(report, scenario, id) {
  const s = report.scenarios.find((x) => x.name === scenario);
  for (const t of s?.tables ?? []) {
    const r = t.rows.find((x) => x.id === id);
    if (r) return r;
  }
  return undefined;
}

const SIZE_OPS = [
  ['get', 'lru-get', 'map-get', 'sg-get'],
  ['getSync', 'lru-get', 'map-get', 'sg-getsync'],
  ['set', 'lru-set', 'map-set', 'sg-set'],
  ['setSync', 'lru-set', 'map-set', 'sg-setsync'],
];

/**
 * The key-count sweep's largest run (sizes-1m, else sizes-100k) as the first headline table:
 * every pattern × operation with lru-cache and Map beside it (issue 12: the README leads with
 * the size users have, not with a key set that fits the CPU caches).
 */
function sizesMarkdown(report, v) {
  const name = ['sizes-1m', 'sizes-100k'].find((n) => report.scenarios.some((s) => s.name === n && s.tables?.length));
  if (name === undefined) return [];
  const keys = report.scenarios.find((s) => s.name === name).extra?.sizes?.keys;
  const out = [`| ${FORMATS.int(keys)} keys, 100 B strings (ops/s) | shardgrid | lru-cache | Map | shardgrid ÷ lru-cache |`, '|---|--:|--:|--:|--:|'];
  for (const pattern of ['uniform', 'zipf', 'scan']) {
    for (const [op, lru, map, sg] of SIZE_OPS) {
      const r = { sg: rowOf(report, name, `${pattern}-${sg}`), lru: rowOf(report, name, `${pattern}-${lru}`), map: rowOf(report, name, `${pattern}-${map}`) };
      if (!r.sg) continue;
      const ratio = r.sg.status === 'ok' && r.lru?.status === 'ok' ? FORMATS.ratio(r.sg.opsPerSec / r.lru.opsPerSec) : '—';
      out.push(`| ${op}, ${pattern === 'scan' ? 'round-robin scan' : pattern === 'zipf' ? 'Zipf(0.99)' : 'uniform random'} | ${v(r.sg)} | ${v(r.lru)} | ${v(r.map)} | ${ratio} |`);
    }
  }
  out.push('');
  return out;
}

/** The headline tables of a results report as markdown (for README.md). */
export function headlineMarkdown(report) {
  const m = report.machine;
  const v = (r, key = 'opsPerSec', f = fmtRate) => (r?.status === 'ok' ? f(r[key]) : r ? r.status : '—');
  const out = [];
  const date = report.startedAt.slice(0, 10);
  out.push(`Latest ${report.mode} run: ${date}, ${m.cpu}, ${m.cores} cores, ${fmtBytes(m.totalMemory)} RAM, Node ${m.node}, Redis ${m.redis ?? 'not available'}${m.busyCoresAtStart !== undefined ? `, ${m.busyCoresAtStart.toFixed(1)} cores busy with other work at start` : ''}; ${Math.round(report.durationMs / 1000)} s in all.`);
  out.push('');
  out.push(...sizesMarkdown(report, v));
  out.push('| operation (ops/s), 10,000 keys round-robin (cache-resident) | shardgrid | lru-cache | lru-cache, awaited | Map | Redis (ioredis, c=1) | shardgrid ÷ lru-cache |');
  out.push('|---|--:|--:|--:|--:|--:|--:|');
  for (const h of HEADLINE) {
    const r = Object.fromEntries(Object.entries(h.ids).map(([k, id]) => [k, rowOf(report, h.scenario, id)]));
    if (!r.sg) continue;
    const ratio = r.sg?.status === 'ok' && r.lru?.status === 'ok' ? FORMATS.ratio(r.sg.opsPerSec / r.lru.opsPerSec) : '—';
    out.push(`| ${h.label} | ${v(r.sg)} | ${v(r.lru)} | ${v(r.lruAwaited)} | ${v(r.map)} | ${v(r.redis)} | ${ratio} |`);
  }
  const threads = report.scenarios.find((s) => s.name === 'threads');
  const tt = threads?.tables?.find((t) => t.id === 'threads');
  if (tt) {
    out.push('');
    out.push('| threads (90/10 Zipf, read-through, cold start) | aggregate ops/s | vs 1 thread | hit rate | cache memory |');
    out.push('|---|--:|--:|--:|--:|');
    for (const r of tt.rows) out.push(`| ${r.name} | ${v(r)} | ${v(r, 'scaling', FORMATS.ratio)} | ${v(r, 'hitRate', FORMATS.percent)} | ${v(r, 'memory', fmtBytes)} |`);
    const cpu = threads.extra?.cpuScaling;
    if (cpu?.before !== undefined) out.push(`\nCPU baseline during that scenario: pure computation in ${cpu.threads} threads ran ${cpu.before.toFixed(2)}x before and ${cpu.after.toFixed(2)}x after the runs as fast as in one thread (${cpu.threads}x = the machine was otherwise idle).`);
  }
  const mem = report.scenarios.find((s) => s.name === 'memory')?.tables?.[0];
  if (mem) {
    out.push('');
    out.push(`| memory, ${FORMATS.int(mem.rows[0]?.entries)} entries of 100 B | bytes per entry | measured as |`);
    out.push('|---|--:|---|');
    for (const r of mem.rows) out.push(`| ${r.name} | ${v(r, 'perEntry', FORMATS.num1)} | ${r.how ?? r.note ?? ''} |`);
  }
  out.push('');
  out.push('Targets:');
  out.push('');
  for (const t of report.targets) {
    const status = t.status === 'reached' || t.status === 'missed' ? `**${t.status}**: ` : '';
    out.push(`${t.variantOf ? '  - variant (not the target): ' : '- '}${t.label}: ${status}${targetFigure(t)}`);
  }
  return out.join('\n');
}
