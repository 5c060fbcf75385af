// One size parser and formatter (src/size.ts) for the memory option, the CLI and the bench reports.
import { describe, expect, it } from 'vitest';
import { formatSize, parseSize } from '../dist/size.js';
import { formatBytes } from '../dist/cli/format.js';

describe('sizes', () => {
  it.each([
    [268435456, '256MB'], [1572864, '1.5MB'], [1000, '1000B'], [0, '0B'], [5 * 1024 ** 4, '5TB'], [1288490189, '1.2GB'],
  ])('formats %d as %s for options, and parseSize reads it back (within the printed precision)', (n, s) => {
    expect(formatSize(n, 'option')).toBe(s);
    expect(formatBytes(n)).toBe(s);
    const back = parseSize(s)!;
    expect(Math.abs(back - n) / Math.max(1, n)).toBeLessThan(0.01);
  });

  it.each([
    [512.4, '512 B'], [2048, '2.0 KiB'], [16.1 * 1024 ** 2, '16.1 MiB'], [23.54 * 1024 ** 3, '23.54 GiB'], [Number.NaN, ''],
  ])('formats %d as %s for reports', (n, s) => expect(formatSize(n, 'report')).toBe(s));

  it.each([
    ['64MB', 64 * 1024 ** 2], ['64mib', 64 * 1024 ** 2], [' 1.5 GB ', 1.5 * 1024 ** 3], ['100', 100], [4096, 4096], ['2TB', 2 * 1024 ** 4],
  ])('parses %o', (v, n) => expect(parseSize(v)).toBe(n));

  it.each([['lots'], ['-1MB'], [''], [-1], [1.5], [null], ['1e3'], ['9999999999TB']])('refuses %o', (v) => {
    expect(parseSize(v)).toBeUndefined();
  });
});
