// The member-to-member transport: see transport.ts (API) and wire.ts (frames and handshake).
export { Transport } from './transport.js';
export type { TransportOptions, Handler, LogFn } from './transport.js';
