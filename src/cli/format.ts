/**
 * Plain-text output of the `shardgrid` command: byte sizes and the status table. Columns are
 * aligned with padEnd and separated by two spaces, no box drawing, so the output stays easy to
 * read and to cut with awk or grep.
 */
import type { ClusterCpStatus, ClusterMemberStatus, ClusterStatus } from '../cluster/status.js';
import { formatSize } from '../size.js';

/**
 * A byte count in the binary units the `--memory` option reads (1MB = 1024 * 1024 bytes), so a
 * printed size can be passed back as it is: 268435456 → '256MB', 1572864 → '1.5MB' (size.ts).
 */
export function formatBytes(n: number): string {
  return formatSize(n, 'option');
}

function role(m: ClusterMemberStatus): string {
  const r = m.lite ? 'lite' : 'data';
  return m.coordinator ? `${r}, coordinator` : r;
}

function memory(m: ClusterMemberStatus): string {
  if (m.bytesUsed === undefined || m.bytesLimit === undefined) return '-';
  return `${formatBytes(m.bytesUsed)} / ${formatBytes(m.bytesLimit)}`;
}

/** Rows of cells as lines: every column padded to its widest cell. */
export function alignColumns(rows: readonly string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

/** `n thing` or `n things`. */
function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The CP line: the group's leader and term, then what its state machine holds. */
function cpLine(c: ClusterCpStatus | undefined): string {
  if (c === undefined) return 'CP: no data member answered';
  const group = c.leader === undefined || c.leader === null ? `no leader (term ${c.term})` : `leader ${c.leader}, term ${c.term}`;
  return (
    `CP (on the metadata Raft log: ${group}, applied index ${c.index}): ${count(c.sessions, 'session')}, ` +
    `${count(c.locks, 'lock')} (${c.locksHeld} held), ${count(c.semaphores, 'semaphore')} (${count(c.permitsHeld, 'permit')} held), ` +
    `${count(c.atomicLongs, 'atomic long')}, ${count(c.atomicRefs, 'atomic ref')}, ${c.waiters} waiting`
  );
}

/** What is moving: `migrating: p3 m-a -> m-b, p17 m-a -> m-c, … (8 of 12 shown)`. */
function migrationsLine(total: number, list: NonNullable<ClusterStatus['migrations']>): string {
  const shown = list.slice(0, 8).map((m) => `p${m.partition} ${m.from ?? '(no owner)'} -> ${m.to.join(' ')}`);
  return `migrating: ${shown.join(', ')}${total > shown.length ? `, … (${shown.length} of ${total} shown)` : ''}`;
}

/**
 * The human form of a status: a header line, what is migrating if anything, the CP line, a line
 * of lost partitions if any, a table of members, then one line per member that did not answer.
 */
export function renderStatus(s: ClusterStatus): string {
  const header =
    `member ${s.self} answered: partition table version ${s.tableVersion}, ${s.partitions} partitions, ` +
    `backups ${s.backups}, ${count(s.migrating, 'partition')} migrating`;
  const rows = [['MEMBER', 'URL', 'ROLE', 'STATUS', 'PRIMARIES', 'BACKUPS', 'ENTRIES', 'MEMORY USED / LIMIT']];
  for (const m of s.members) {
    rows.push([m.id, m.url, role(m), m.status, String(m.primaries), String(m.backups), m.entries === undefined ? '-' : String(m.entries), memory(m)]);
  }
  // a member SWIM holds dead (or left, or unknown) is listed while the table names it: not asked at all
  const silent = s.members.filter((m) => m.error !== undefined).map((m) => `member ${m.id} ${m.status === 'alive' || m.status === 'suspect' ? 'did not answer' : 'is not reachable'}: ${m.error}`);
  const moving = s.migrating > 0 && s.migrations !== undefined && s.migrations.length > 0 ? [migrationsLine(s.migrating, s.migrations)] : [];
  // lost partitions were in the JSON only: the human form said nothing of data that is gone
  const lost = s.lostPartitions ?? [];
  const lostLine = lost.length === 0 ? [] : [`${count(lost.length, 'partition')} lost every copy at some point, beyond the backups (their data is gone): ${lost.slice(0, 20).join(',')}${lost.length > 20 ? ',…' : ''}`];
  return [header, ...moving, cpLine(s.cp), ...lostLine, '', ...alignColumns(rows), ...(silent.length > 0 ? ['', ...silent] : [])].join('\n') + '\n';
}
