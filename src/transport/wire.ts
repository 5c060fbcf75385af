/**
 * Wire format of the member-to-member transport: a small fixed set of frames, each one binary
 * WebSocket message holding one msgpack array whose first element is the frame type, except the
 * FAST frames of hot map operations (fast.ts), which start with the byte 0xC1 (never used by
 * msgpack). Protocol version 2 added FAST frames.
 *
 * ```
 * HELLO     [1, version, memberId:str, url:str, nonce:bin32]          dialler  -> listener
 * CHALLENGE [2, memberId:str, nonce:bin32]                             listener -> dialler
 * AUTH      [3, proof:bin32]                                           dialler  -> listener
 * WELCOME   [4, proof:bin32]                                           listener -> dialler
 * BATCH     [5, (kind, id, type, body) x n]                            either way, after WELCOME
 * FAST      binary records, first byte 0xC1 (fast.ts)                 either way, after WELCOME
 *   kind 0 REQUEST  id > 0   type:str   body
 *   kind 1 NOTIFY   0        type:str   body
 *   kind 2 REPLY    id > 0   null       body
 *   kind 3 ERROR    id > 0   null       {code:str, message:str, data?}
 * ```
 *
 * The dialler proves first (AUTH = HMAC over both nonces and both ids), so a peer without the
 * secret never obtains a MAC computed by the listener; the listener proves second (WELCOME), so
 * the dialler also knows it reached a member of the cluster. Fields are length-prefixed inside
 * the MAC input so no two different handshakes hash the same bytes.
 *
 * A BATCH is one flat array with a fixed stride of 4, so a frame of n messages costs one array
 * and one encode, and validating it is one loop without per-message objects.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Packr, Unpackr } from 'msgpackr';

export const PROTOCOL_VERSION = 2;

export const F_HELLO = 1;
export const F_CHALLENGE = 2;
export const F_AUTH = 3;
export const F_WELCOME = 4;
export const F_BATCH = 5;

export const K_REQUEST = 0;
export const K_NOTIFY = 1;
export const K_REPLY = 2;
export const K_ERROR = 3;

/** Items per message inside a BATCH frame. */
export const STRIDE = 4;

export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const MAX_ID_CHARS = 256;
export const MAX_URL_CHARS = 1024;

/** Close codes (4000-4999 are for applications). */
export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_PROTOCOL = 1002;
export const CLOSE_DISCONNECT = 4000;
export const CLOSE_AUTH = 4001;
export const CLOSE_DUPLICATE = 4002;
export const CLOSE_SAME_ID = 4003;
export const CLOSE_HANDSHAKE_TIMEOUT = 4004;
export const CLOSE_BUSY = 4005;

/**
 * Encoder: no records (they would need structures shared by both ends), so every frame is plain
 * msgpack. The returned buffers are never overwritten by later encodes (msgpackr starts each
 * encode after the previous one in its scratch buffer), so they can be handed to ws.send.
 */
export const packr = new Packr({ useRecords: false });

/**
 * Decoder for untrusted input. useRecords: false and no structures; maps become plain objects,
 * and msgpackr renames a `__proto__` key to `__proto_`, so a decoded map can neither replace its
 * own prototype nor reach Object.prototype (checked by test/transport.test.ts). `constructor`
 * stays an ordinary own property. The structured-clone extension (back-references) is off.
 * Trailing bytes and truncated input throw.
 */
export const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, structuredClone: false });

export function nonce(): Buffer {
  return randomBytes(NONCE_BYTES);
}

export function isBytes(x: unknown, n: number): x is Uint8Array {
  return x instanceof Uint8Array && x.length === n;
}

export function isName(x: unknown, max: number): x is string {
  return typeof x === 'string' && x.length > 0 && x.length <= max;
}

function field(h: ReturnType<typeof createHmac>, s: string): void {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.allocUnsafe(4);
  len.writeUInt32BE(b.length, 0);
  h.update(len);
  h.update(b);
}

/**
 * The MAC each side sends. `role` separates the dialler's proof from the listener's, so one can
 * never be replayed as the other.
 */
export function proof(
  secret: string,
  role: 'dialler' | 'listener',
  dialNonce: Uint8Array,
  listenNonce: Uint8Array,
  diallerId: string,
  listenerId: string,
  diallerUrl: string,
): Buffer {
  const h = createHmac('sha256', secret);
  field(h, `shardgrid/${PROTOCOL_VERSION} ${role}`);
  h.update(dialNonce);
  h.update(listenNonce);
  field(h, diallerId);
  field(h, listenerId);
  field(h, diallerUrl);
  return h.digest();
}

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(expected: Buffer, got: unknown): boolean {
  return isBytes(got, PROOF_BYTES) && timingSafeEqual(expected, got);
}
