// Optional mutual TLS on the member port, with a throwaway CA made by openssl in the test.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transport } from '../dist/transport/index.js';
import { memberIdFor } from '../dist/transport/identity.js';
import type { TlsOptions } from '../dist/transport/index.js';
import { GridError } from '../dist/errors.js';
import WebSocket from 'ws';
import { connect as tlsConnect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { makeCa } from './fixtures/tls.js';
import { connect as netConnect } from 'node:net';

const SECRET = 'tls-test-secret-0123456789abcdef';
let dir: string;

const tlsOf = (leaf: string, ca: string): TlsOptions => ({
  key: readFileSync(join(dir, `${leaf}.key`)),
  cert: readFileSync(join(dir, `${leaf}.pem`), 'utf8'),
  ca: readFileSync(join(dir, `${ca}.pem`)),
});

/** Member id `base` as the holder of leaf's certificate must use (base@<principal>). */
const idOf = (base: string, leaf: string): string => memberIdFor(base, { cert: readFileSync(join(dir, `${leaf}.pem`)) });

describe('mutual TLS (cluster.tls)', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sg-tls-'));
    makeCa(dir, 'ca', ['a', 'b', 'relay', 'eve']);
    makeCa(dir, 'other-ca', ['mallory']);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('two members with certificates from the cluster CA listen on wss:// and exchange requests', { timeout: 20_000 }, async () => {
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('a', 'a'), tls: tlsOf('a', 'ca'), log: () => undefined });
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('b', 'b'), tls: tlsOf('b', 'ca'), log: () => undefined });
    try {
      expect(a.url.startsWith('wss://127.0.0.1:')).toBe(true);
      a.handle('double', (n: number) => n * 2);
      expect(await b.connect(a.url)).toBe(a.memberId);
      expect(await b.request(a.memberId, 'double', 21)).toBe(42);
      expect(a.urlOf(b.memberId)).toBe(b.url);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('binds member ids to certificates: a peer whose id names another certificate is refused, dialling or listening', { timeout: 20_000 }, async () => {
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('a6', 'a'), tls: tlsOf('a', 'ca'), log: () => undefined });
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('b6', 'b'), tls: tlsOf('b', 'ca'), log: () => undefined });
    // eve holds the secret and a certificate of the cluster CA: a member, but not a nor b
    const eve = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('eve', 'eve'), tls: tlsOf('eve', 'ca'), log: () => undefined });
    const asEve = eve as unknown as { memberId: string };
    const authErrors: string[] = [];
    a.on('auth-error', (e: GridError) => authErrors.push(e.message));
    try {
      a.handle('who', () => 'b');
      b.handle('who', () => 'b');
      eve.handle('who', () => 'eve');
      expect(await b.connect(a.url, 3000)).toBe(a.memberId);
      // dialling: eve introduces itself with b's id (a takes a second HELLO of a connected id for
      // that member reconnecting, and would replace b's link with eve's)
      asEve.memberId = b.memberId;
      const e1 = await eve.connect(a.url, 3000).catch((e: unknown) => e);
      expect(e1).toBeInstanceOf(GridError);
      expect((e1 as GridError).code).toBe('GRID_ERR_AUTH');
      expect(authErrors.some((m) => m.includes('does not name the certificate'))).toBe(true);
      expect(a.peers()).toEqual([b.memberId]);
      expect(await a.request(b.memberId, 'who', null)).toBe('b'); // still b's own link
      // listening: eve answers a dial with an id bound to a's certificate
      asEve.memberId = `a7@${a.memberId.slice(a.memberId.lastIndexOf('@') + 1)}`;
      const e2 = await b.connect(eve.url, 3000).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(GridError);
      expect((e2 as GridError).code).toBe('GRID_ERR_AUTH');
      expect(b.peers()).toEqual([a.memberId]);
      // an id without the certificate's principal is refused before anything listens
      const e3 = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'eve2', tls: tlsOf('eve', 'ca'), log: () => undefined }).catch((e: unknown) => e);
      expect((e3 as GridError).code).toBe('GRID_ERR_INVALID_ARGUMENT');
      // control: under its own id, eve connects
      asEve.memberId = idOf('eve', 'eve');
      expect(await eve.connect(a.url, 3000)).toBe(a.memberId);
      expect(await a.request(idOf('eve', 'eve'), 'who', null)).toBe('eve');
    } finally {
      await Promise.all([a.close(), b.close(), eve.close()]);
    }
  });

  it('refuses a dialler without a client certificate, and one whose certificate another CA signed', { timeout: 20_000 }, async () => {
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('a2', 'a'), tls: tlsOf('a', 'ca'), log: () => undefined });
    const mallory = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('mallory', 'mallory'), tls: { ...tlsOf('mallory', 'other-ca'), ca: readFileSync(join(dir, 'ca.pem')) }, log: () => undefined });
    try {
      // trusts the cluster CA (so the server's certificate passes) but presents no certificate of its own
      const noCert = await new Promise<string>((resolve) => {
        const ws = new WebSocket(a.url, { ca: readFileSync(join(dir, 'ca.pem')) });
        ws.once('open', () => {
          ws.close();
          resolve('open');
        });
        ws.once('error', (e: Error & { code?: string }) => resolve(`error ${e.code ?? e.message}`));
      });
      expect(noCert).toMatch(/^error /);
      const e2 = await mallory.connect(a.url, 3000).catch((e: unknown) => e);
      expect(e2).toBeInstanceOf(GridError);
      expect(a.peers()).toEqual([]);
      // control: a member with a certificate of the cluster CA gets in
      const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('b2', 'b'), tls: tlsOf('b', 'ca'), log: () => undefined });
      try {
        expect(await b.connect(a.url, 3000)).toBe(a.memberId);
      } finally {
        await b.close();
      }
    } finally {
      await Promise.all([a.close(), mallory.close()]);
    }
  });

  it('a member logs why it refused a TLS connection (its certificate, none, plain HTTP), not as a malformed HTTP request', { timeout: 20_000 }, async () => {
    const lines: string[] = [];
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('a5', 'a'), tls: tlsOf('a', 'ca'), log: (level, message) => lines.push(`${level} ${message}`) });
    const mallory = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('mallory5', 'mallory'), tls: { ...tlsOf('mallory', 'other-ca'), ca: readFileSync(join(dir, 'ca.pem')) }, log: () => undefined });
    const plain = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: 'plain5', log: () => undefined });
    try {
      expect(await mallory.connect(a.url, 3000).catch((e: unknown) => e)).toBeInstanceOf(GridError);
      expect(await plain.connect(a.url.replace('wss:', 'ws:'), 3000).catch((e: unknown) => e)).toBeInstanceOf(GridError);
      const noCert = new WebSocket(a.url, { ca: readFileSync(join(dir, 'ca.pem')) });
      await new Promise((r) => noCert.once('error', r).once('close', r));
      const until = Date.now() + 3000;
      while (lines.length < 3 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(lines).toEqual([
        expect.stringMatching(/^warn refused a TLS connection from 127\.0\.0\.1: its certificate failed verification against this member's CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\)$/),
        expect.stringMatching(/^warn refused a TLS connection from 127\.0\.0\.1: plain HTTP on this wss:\/\/ port/),
        expect.stringMatching(/^warn refused a TLS connection from 127\.0\.0\.1: it sent no certificate/),
      ]);
      // a peer that hangs up in the middle of its handshake was refused nothing: not reported as a
      // refusal, nor as a warning (a healthy TLS cluster has these while its members join)
      await new Promise<void>((resolve) => {
        const c = netConnect(Number(a.url.split(':').pop()), '127.0.0.1', () => {
          c.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])); // the start of a ClientHello
          setTimeout(() => c.resetAndDestroy(), 50);
        });
        c.on('error', () => undefined).on('close', () => resolve());
      });
      const until2 = Date.now() + 3000;
      while (lines.length < 4 && Date.now() < until2) await new Promise((r) => setTimeout(r, 20));
      expect(lines[3]).toMatch(/^info a connection from 127\.0\.0\.1 ended during its TLS handshake: ECONNRESET$/);
    } finally {
      await Promise.all([a.close(), mallory.close(), plain.close()]);
    }
  });

  it('a dialler refuses a listener whose certificate another CA signed', { timeout: 20_000 }, async () => {
    const evil = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('evil', 'mallory'), tls: { ...tlsOf('mallory', 'other-ca'), ca: readFileSync(join(dir, 'ca.pem')) }, log: () => undefined });
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('b3', 'b'), tls: tlsOf('b', 'ca'), log: () => undefined });
    try {
      expect(await b.connect(evil.url, 3000).catch((e: unknown) => e)).toBeInstanceOf(GridError);
      expect(b.peers()).toEqual([]);
    } finally {
      await Promise.all([evil.close(), b.close()]);
    }
  });
  it('frames of a TLS link go unsealed inside TLS, and a TLS-terminating relay with a certificate of the cluster CA never gets a session (channel binding)', { timeout: 20_000 }, async () => {
    // the relay: a certificate of the cluster CA for 127.0.0.1 (so both TLS handshakes pass), no secret
    let relayed = 0;
    const relay: TlsServer = createTlsServer({ ...tlsOf('relay', 'ca'), minVersion: 'TLSv1.3' }, (inner) => {
      const outer = tlsConnect({ host: '127.0.0.1', port: bPort, ...tlsOf('relay', 'ca'), minVersion: 'TLSv1.3' });
      inner.on('data', (d: Buffer) => {
        relayed += d.length;
        outer.write(d);
      });
      outer.on('data', (d: Buffer) => inner.write(d));
      const end = () => {
        inner.destroy();
        outer.destroy();
      };
      inner.on('error', end).on('close', end);
      outer.on('error', end).on('close', end);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', () => r()));
    const relayPort = (relay.address() as { port: number }).port;
    // b advertises the relay's address, as a member behind a proxy does, so the dialled url checks out
    const b = await Transport.listen({ host: '127.0.0.1', port: 0, advertise: `127.0.0.1:${relayPort}`, secret: SECRET, memberId: idOf('b4', 'b'), tls: tlsOf('b', 'ca'), log: () => undefined });
    const bPort = (b as unknown as { boundPort: number }).boundPort;
    const a = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: idOf('a4', 'a'), tls: tlsOf('a', 'ca'), log: () => undefined });
    try {
      expect(b.url).toBe(`wss://127.0.0.1:${relayPort}`);
      const viaRelay = await a.connect(b.url, 3000).catch((e: unknown) => e);
      expect(relayed).toBeGreaterThan(0); // the relay did carry the handshake
      expect(viaRelay).toBeInstanceOf(GridError);
      expect((viaRelay as GridError).code).toBe('GRID_ERR_AUTH');
      expect(b.peers()).toEqual([]);
      // control: dialled directly (b's own bound url), the same two members connect, and the link relies on TLS alone
      b.handle('double', (n: number) => n * 2);
      expect(await a.connect(`wss://127.0.0.1:${bPort}`, 3000)).toBe(b.memberId);
      expect(await a.request(b.memberId, 'double', 21)).toBe(42);
      const link = (a as unknown as { links: Map<string, { sealed: boolean }> }).links.get(b.memberId);
      expect(link?.sealed).toBe(false);
    } finally {
      await Promise.all([a.close(), b.close()]);
      relay.close();
    }
  });
});
