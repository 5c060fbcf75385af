// The member-to-member transport: see transport.ts (API), wire.ts (frames and handshake) and
// fast.ts (the compact FAST frames of hot map operations).
export { FastCall, Transport } from './transport.js';
export type { FastPeer, FastServer, TransportOptions, TlsOptions, Handler, LogFn } from './transport.js';
