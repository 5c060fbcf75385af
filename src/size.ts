/**
 * Byte sizes, read and written in one place: the `memory` option and the CLI's `--memory`
 * (parseSize), the CLI's output (formatSize, 'option' style: what it prints can be passed back)
 * and the benchmark reports (formatSize, 'report' style). Binary units throughout: 1MB = 1MiB =
 * 2^20 bytes, as the option has always read them.
 */

const MULTIPLIERS: Record<string, number> = { '': 1, b: 1, kb: 1024, kib: 1024, mb: 1024 ** 2, mib: 1024 ** 2, gb: 1024 ** 3, gib: 1024 ** 3, tb: 1024 ** 4, tib: 1024 ** 4 };
const SIZE = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i;

/**
 * A byte count: a non-negative safe integer as it is, or a size string ('64MB', '1.5GB',
 * '512KiB', '100'; case-insensitive, binary units), rounded down to whole bytes. undefined for
 * anything else (the caller names the option in its error).
 */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = SIZE.exec(v);
  if (m === null) return undefined;
  const unit = MULTIPLIERS[m[2].toLowerCase()];
  if (unit === undefined) return undefined;
  const n = Math.floor(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * - 'option': the form parseSize and `--memory` read back, no space, at most 2 decimals below
 *   10 and 1 above: 268435456 → '256MB', 1572864 → '1.5MB', 1000 → '1000B'.
 * - 'report': a figure for a table, fixed decimals and IEC names: '23.54 GiB', '16.1 MiB',
 *   '2.0 KiB', '512 B'; '' for a missing (non-finite) figure.
 */
export type SizeStyle = 'option' | 'report';

const OPTION_UNITS = ['B', 'KB', 'MB', 'GB', 'TB'] as const;
const REPORT_UNITS = ['B', 'KiB', 'MiB', 'GiB'] as const;
const REPORT_DIGITS = [0, 1, 1, 2] as const;

export function formatSize(n: number, style: SizeStyle = 'option'): string {
  if (!Number.isFinite(n)) return style === 'report' ? '' : String(n);
  const units = style === 'report' ? REPORT_UNITS : OPTION_UNITS;
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (style === 'report') return u === 0 ? `${Math.round(v)} B` : `${v.toFixed(REPORT_DIGITS[u])} ${units[u]}`;
  const digits = u === 0 || Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1;
  return `${Number(v.toFixed(digits))}${units[u]}`;
}
