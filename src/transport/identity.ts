/**
 * Member ids bound to TLS certificates (per-member credentials).
 *
 * Without `cluster.tls` a link proves only that its peer holds the cluster secret: any secret
 * holder may introduce itself under any member id, including one a live member already uses (the
 * member then takes it for that member reconnecting, and replaces the link). With `cluster.tls`
 * every member id ends with `@` and the principal of the certificate its process presents (the
 * first 24 hex digits of the leaf's SHA-256 fingerprint), and both ends of a handshake refuse a
 * peer whose id names another certificate than the one its TLS connection proved. So a process
 * holding one member's key can speak as the ids of that key only: not as another member in Raft,
 * in a vote, a vouching round, a replicated write's acknowledgement or a hint that someone was
 * removed. The fingerprint (not the subject name) is the principal: it needs no naming rule from
 * the certificate's issuer, and two certificates never share it.
 */
import type { X509Certificate } from 'node:crypto';
import { pemCertificates } from '../config.js';

/** Hex digits of the leaf's SHA-256 fingerprint that name a principal (96 bits). */
const PRINCIPAL_HEX = 24;

/** The principal of a certificate: the first PRINCIPAL_HEX hex digits of its SHA-256 fingerprint, lower case. */
export function principalOf(cert: X509Certificate): string {
  return cert.fingerprint256.replace(/:/g, '').slice(0, PRINCIPAL_HEX).toLowerCase();
}

/** The principal of the first (leaf) certificate of a PEM chain; undefined when none parses. */
export function principalOfPem(pem: string | Buffer): string | undefined {
  const leaf = pemCertificates(pem)?.[0];
  return leaf === undefined ? undefined : principalOf(leaf);
}

/** The principal an id names (what follows its last `@`), or undefined. */
export function principalOfId(id: string): string | undefined {
  const at = id.lastIndexOf('@');
  return at < 0 ? undefined : id.slice(at + 1);
}

/**
 * The member id `base` as a process presenting certificate chain `cert` must use: `base@<principal>`;
 * `base` itself without TLS.
 */
export function memberIdFor(base: string, tls: { cert: string | Buffer } | undefined): string {
  if (tls === undefined) return base;
  const p = principalOfPem(tls.cert);
  return p === undefined ? base : `${base}@${p}`;
}
