// F7: a peer that holds the cluster secret sends raw grid.op requests naming code by location
// (a data: URL, an absolute path). The member must not import anything it was not given at start:
// the code does not run (its marker file never appears) and a typed error comes back.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GridError } from '../../dist/index.js';
import { decodeMsgpack, encodeMsgpack } from '../../dist/storage/codec.js';
import { Transport } from '../../dist/transport/transport.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'compute-wire-test-secret-0123456789';


async function rejection(p: Promise<unknown>): Promise<GridError> {
  try {
    await p;
  } catch (e) {
    return e as GridError;
  }
  throw new Error('expected a rejection');
}

describe('compute modules never come from the wire (F7)', () => {
  let dir: string;
  let member: GridProcess;
  let peer: Transport;
  let peerId: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'shardgrid-f7-'));
    member = await startGridMember({ backups: 0 }, SECRET);
    // a peer that knows the secret: an ordinary Transport, not a member of anything
    peer = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `attacker-${randomBytes(4).toString('hex')}`, log: () => undefined });
    peerId = await peer.connect(member.url, 10_000);
  }, 40_000);

  afterAll(async () => {
    await peer?.close();
    member?.proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  /** An ES module that writes `marker` when it is evaluated, and exports an entry processor and an aggregator. */
  function evilModule(marker: string): string {
    const file = join(dir, `evil-${randomBytes(4).toString('hex')}.mjs`);
    writeFileSync(
      file,
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'ran');\n` +
        `export const fn = () => 'pwned';\n` +
        `export const agg = { init: () => 0, accumulate: (a) => a + 1, combine: (a, b) => a + b };\n`,
    );
    return file;
  }

  const op = (body: Record<string, unknown>) => peer.request(peerId, 'grid.op', body, 15_000);

  it('a data: URL aggregator sent as a raw grid.op does not run, and a typed error comes back', { timeout: 30_000 }, async () => {
    const marker = join(dir, 'data-url.marker');
    const src = `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'ran'); export const agg = { init: () => 0, accumulate: (a) => a, combine: (a, b) => a + b };`;
    const url = `data:text/javascript,${encodeURIComponent(src)}`;
    for (const f of [{ url, name: 'agg' }, { module: url, name: 'agg' }]) {
      const e = await rejection(op({ m: 'f7', o: 'agg', f, ps: [0], t: 5000 })); // protocol 7: whole-map ops name their partitions
      expect(e).toBeInstanceOf(GridError);
      expect(e.code).toMatch(/^GRID_ERR_(UNKNOWN_MODULE|INVALID_ARGUMENT)$/);
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('an absolute module path in a raw compute or aggregate grid.op does not run, and GRID_ERR_UNKNOWN_MODULE comes back', { timeout: 30_000 }, async () => {
    const marker = join(dir, 'abs-path.marker');
    const file = evilModule(marker);
    for (const module of [file, `file://${file}`]) {
      const cmp = await rejection(op({ m: 'f7', o: 'cmp', k: 'key', f: { module, name: 'fn' }, a: encodeMsgpack(null) }));
      expect(cmp).toBeInstanceOf(GridError);
      expect(cmp.code).toBe('GRID_ERR_UNKNOWN_MODULE');
      const agg = await rejection(op({ m: 'f7', o: 'agg', f: { module, name: 'agg' }, ps: [0], t: 5000 }));
      expect(agg.code).toBe('GRID_ERR_UNKNOWN_MODULE');
    }
    expect(existsSync(marker)).toBe(false);
    // the member keeps serving
    expect(await op({ m: 'f7', o: 'size', ps: [0] })).toBe(0);
  });

  it('a module registered at start is run by name from a remote request; an unregistered name fails with GRID_ERR_UNKNOWN_MODULE', { timeout: 30_000 }, async () => {
    // protocol 6: arguments and results travel as the value codec's msgpack bytes
    const run = async (a: number) => decodeMsgpack((await op({ m: 'f7-ok', o: 'cmp', k: 'n', f: { module: 'procs', name: 'increment' }, a: encodeMsgpack(a) })) as Uint8Array);
    expect(await run(4)).toBe(4);
    expect(await run(3)).toBe(7);
    const e = await rejection(op({ m: 'f7-ok', o: 'cmp', k: 'n', f: { module: 'other', name: 'increment' }, a: encodeMsgpack(1) }));
    expect(e.code).toBe('GRID_ERR_UNKNOWN_MODULE');
    expect(e.message).toContain("'other'");
    // an argument that is not codec bytes is refused, and nothing runs
    expect((await rejection(op({ m: 'f7-ok', o: 'cmp', k: 'n', f: { module: 'procs', name: 'increment' }, a: 1 }))).code).toBe('GRID_ERR_PROTOCOL');
    expect(await run(0)).toBe(7);
  });
});
