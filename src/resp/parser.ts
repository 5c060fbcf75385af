/**
 * Incremental parser of client requests: RESP arrays of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
 * and inline commands (`GET k\r\n`, what a telnet user types). Every byte is hostile: each count
 * and length is checked against its limit before anything is allocated for it, a bulk's bytes are
 * kept as the chunks that arrived (never preallocated from a length the client declared), and what
 * a client has buffered without completing a command is bounded by `queryBufferLimit`. A malformed
 * request ends parsing with Redis's own "Protocol error: ..." text; the connection is then closed.
 *
 * Layout of a request, as the state machine reads it:
 *
 *   '*' COUNT CRLF  ( '$' LEN CRLF  BYTES[LEN]  CRLF ){COUNT}        COUNT <= maxMultibulk, LEN <= maxBulk
 *   INLINE-TEXT LF                                                     at most INLINE_MAX bytes
 */

export interface ParserLimits {
  /** proto-max-bulk-len: longest argument, bytes. */
  maxBulk: number;
  /** Most arguments in one request. */
  maxMultibulk: number;
  /** client-query-buffer-limit: most bytes buffered for requests not yet complete. */
  queryBufferLimit: number;
}

/** Before AUTH, as Redis: at most 10 arguments and 16 KiB per argument. */
export const UNAUTH_MAX_MULTIBULK = 10;
export const UNAUTH_MAX_BULK = 16 * 1024;
/** Longest inline request or '*'/'$' header line (Redis: PROTO_INLINE_MAX_SIZE). */
export const INLINE_MAX = 64 * 1024;
/** Longest count or length line: 20 digits and a sign are more than any valid one. */
const HEADER_MAX = 32;
/** A bulk at least this long is gathered from its chunks; shorter ones are sliced straight out. */
const GATHER_MIN = 64 * 1024;

const CR = 13;
const LF = 10;
const STAR = 42;
const DOLLAR = 36;

const IDLE = 0; // between requests
const BULK_HEAD = 1; // expecting '$' of the next argument
const BULK_BODY = 2; // reading `need` bytes of an argument, then CRLF

export class RespParser {
  /** Bytes received and not consumed yet (a partial header or a small partial bulk). */
  private pend: Buffer = Buffer.alloc(0);
  private state = IDLE;
  private argc = 0;
  private args: Buffer[] = [];
  /** Bytes held in `args` of the request being read. */
  private argBytes = 0;
  /** Length of the bulk being read (BULK_BODY). */
  private need = 0;
  /** Chunks of a long bulk (>= GATHER_MIN) gathered as they arrive, and their total. */
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Set when the client has authenticated (lifts the pre-auth limits). */
  authenticated: boolean;
  /**
   * Set by feed when, before authentication, it stopped behind an AUTH or HELLO: the bytes after
   * it are held (feed(EMPTY) reads on) so that they are read with the limits that request leaves.
   * Redis reads one request, runs it, then reads the next: a client may pipeline `AUTH pw` and a
   * request over the pre-auth limits (node-redis and ioredis do when they reconnect), and parsing
   * it before the AUTH ran refused it as a protocol error and closed the connection.
   */
  stopped = false;

  constructor(private readonly limits: ParserLimits, authenticated: boolean) {
    this.authenticated = authenticated;
  }

  /** Bytes this parser holds for requests not yet complete. */
  get buffered(): number {
    return this.pend.length + this.argBytes + this.partBytes;
  }

  /**
   * Parses `chunk` with what came before it; pushes each complete request (its arguments) to
   * `out`. Returns undefined, or the protocol error (Redis's text, without '-ERR ') that ends the
   * connection; requests before the bad one are in `out`.
   */
  feed(chunk: Buffer, out: Buffer[][]): string | undefined {
    this.stopped = false;
    let buf: Buffer;
    if (this.state === BULK_BODY && this.parts.length > 0) {
      // a long bulk: take what belongs to it without copying the rest
      const take = Math.min(chunk.length, this.need + 2 - this.partBytes);
      this.parts.push(chunk.subarray(0, take));
      this.partBytes += take;
      if (this.partBytes < this.need + 2) return this.overLimit();
      const all = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
      if (all[this.need] !== CR || all[this.need + 1] !== LF) return 'Protocol error: expected CRLF after a bulk string';
      const err = this.addArg(all.subarray(0, this.need), out);
      if (err !== undefined) return err;
      buf = chunk.subarray(take);
    } else {
      buf = this.pend.length === 0 ? chunk : chunk.length === 0 ? this.pend : Buffer.concat([this.pend, chunk]);
    }
    this.pend = EMPTY;
    let pos = 0;
    const n = buf.length;
    while (pos < n) {
      if (this.state === IDLE) {
        if (buf[pos] === STAR) {
          const line = readHeader(buf, pos + 1);
          if (line === NEED_MORE) break;
          if (line === TOO_LONG) return 'Protocol error: too big mbulk count string';
          const count = hdrValue;
          if (count === BAD_NUMBER || count > this.limits.maxMultibulk) return 'Protocol error: invalid multibulk length';
          if (!this.authenticated && count > UNAUTH_MAX_MULTIBULK) return 'Protocol error: unauthenticated multibulk length';
          pos = hdrNext;
          if (count <= 0) continue; // Redis skips '*0' and '*-1'
          this.argc = count;
          this.args = [];
          this.argBytes = 0;
          this.state = BULK_HEAD;
        } else {
          const lf = buf.indexOf(LF, pos);
          if (lf < 0) {
            if (n - pos > INLINE_MAX) return 'Protocol error: too big inline request';
            break;
          }
          if (lf - pos > INLINE_MAX) return 'Protocol error: too big inline request';
          const end = lf > pos && buf[lf - 1] === CR ? lf - 1 : lf;
          const argv = splitInline(buf.subarray(pos, end));
          if (argv === undefined) return 'Protocol error: unbalanced quotes in request';
          if (!this.authenticated && argv.length > UNAUTH_MAX_MULTIBULK) return 'Protocol error: unauthenticated multibulk length';
          if (argv.length > this.limits.maxMultibulk) return 'Protocol error: invalid multibulk length';
          pos = lf + 1;
          if (argv.length > 0) {
            out.push(argv);
            if (this.holdsBack(argv)) break;
          }
        }
      } else if (this.state === BULK_HEAD) {
        if (buf[pos] !== DOLLAR) return `Protocol error: expected '$', got '${printable(buf[pos])}'`;
        const line = readHeader(buf, pos + 1);
        if (line === NEED_MORE) break;
        if (line === TOO_LONG) return 'Protocol error: too big bulk count string';
        const len = hdrValue;
        if (len === BAD_NUMBER || len < 0 || len > this.limits.maxBulk) return 'Protocol error: invalid bulk length';
        if (!this.authenticated && len > UNAUTH_MAX_BULK) return 'Protocol error: unauthenticated bulk length';
        if (this.argBytes + len > this.limits.queryBufferLimit) return QUERY_LIMIT;
        pos = hdrNext;
        this.need = len;
        this.state = BULK_BODY;
      } else {
        const need = this.need;
        if (n - pos >= need + 2) {
          if (buf[pos + need] !== CR || buf[pos + need + 1] !== LF) return 'Protocol error: expected CRLF after a bulk string';
          // a view, not a copy: `buf` is memory of this connection's own (each socket read comes in an
          // ArrayBuffer of its exact size, and a concatenation is a new one), so an argument kept
          // for a while (a routed write) holds at most one read's bytes; values are copied when stored
          const arg = buf.subarray(pos, pos + need);
          pos += need + 2;
          const err = this.addArg(arg, out);
          if (err !== undefined) return err;
          if (this.state === IDLE && this.holdsBack(out[out.length - 1])) break;
        } else if (need >= GATHER_MIN) {
          const rest = buf.subarray(pos);
          this.parts = [rest];
          this.partBytes = rest.length;
          return this.overLimit();
        } else {
          break;
        }
      }
    }
    // a copy: the chunk is not kept whole; but a view behind an AUTH, read on at once (copying it
    // for each of a chunk's many AUTHs would cost the square of its length)
    if (pos < n) this.pend = this.stopped ? buf.subarray(pos) : Buffer.from(buf.subarray(pos));
    return this.overLimit();
  }

  private addArg(arg: Buffer, out: Buffer[][]): string | undefined {
    this.args.push(arg);
    this.argBytes += arg.length;
    this.state = BULK_HEAD;
    if (this.args.length === this.argc) {
      out.push(this.args);
      this.args = [];
      this.argBytes = 0;
      this.state = IDLE;
    }
    return undefined;
  }

  /** Whether to stop reading behind request `argv` (an AUTH or HELLO before authentication): sets `stopped`. */
  private holdsBack(argv: Buffer[]): boolean {
    if (this.authenticated) return false;
    const name = argv[0];
    this.stopped = (name.length === 4 || name.length === 5) && /^(?:auth|hello)$/i.test(name.toString('latin1'));
    return this.stopped;
  }

  private overLimit(): string | undefined {
    return this.buffered > this.limits.queryBufferLimit ? QUERY_LIMIT : undefined;
  }
}

const EMPTY = Buffer.alloc(0);
export const QUERY_LIMIT = 'Protocol error: client query buffer limit exceeded';
const NEED_MORE = 0;
const TOO_LONG = 1;
const HEADER_OK = 2;
const BAD_NUMBER = -Infinity;

/** readHeader's result: the line's value (BAD_NUMBER when not an integer) and where the next line starts. */
let hdrValue = 0;
let hdrNext = 0;

/** A count or length line after '*' or '$': HEADER_OK (hdrValue, hdrNext set), NEED_MORE or TOO_LONG. */
function readHeader(buf: Buffer, from: number): number {
  const limit = Math.min(buf.length, from + HEADER_MAX);
  let i = from;
  while (i < limit && buf[i] !== CR) i++;
  if (i === limit) return buf.length - from >= HEADER_MAX ? TOO_LONG : NEED_MORE;
  if (i + 1 >= buf.length) return NEED_MORE;
  hdrNext = i + 2;
  hdrValue = buf[i + 1] !== LF ? BAD_NUMBER : parseDecimal(buf, from, i);
  return HEADER_OK;
}

/** An optional '-' and 1 to 18 digits, nothing else; otherwise BAD_NUMBER. */
function parseDecimal(buf: Buffer, from: number, to: number): number {
  let i = from;
  const neg = buf[i] === 45;
  if (neg) i++;
  if (i === to || to - i > 18) return BAD_NUMBER;
  let v = 0;
  for (; i < to; i++) {
    const c = buf[i] - 48;
    if (c < 0 || c > 9) return BAD_NUMBER;
    v = v * 10 + c;
  }
  return neg ? -v : v;
}

const printable = (c: number): string => (c >= 32 && c < 127 ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`);

/**
 * Splits an inline request into arguments as redis-cli's users expect: separated by spaces or
 * tabs, "double quotes" with \n \r \t \\ \" \xHH escapes, 'single quotes' with \' only. A closing
 * quote must be followed by a space or the end. Undefined: unbalanced quotes.
 */
export function splitInline(line: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  const n = line.length;
  let i = 0;
  for (;;) {
    while (i < n && (line[i] === 32 || line[i] === 9)) i++;
    if (i >= n) return out;
    const q = line[i];
    if (q === 34 || q === 39) {
      const bytes: number[] = [];
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const c = line[i];
        if (c === q) {
          i++;
          if (i < n && line[i] !== 32 && line[i] !== 9) return undefined;
          break;
        }
        if (c === 92 && i + 1 < n) {
          const e = line[i + 1];
          if (q === 39) {
            if (e === 39) {
              bytes.push(39);
              i += 2;
              continue;
            }
          } else if (e === 120 && i + 3 < n && isHex(line[i + 2]) && isHex(line[i + 3])) {
            bytes.push(parseInt(String.fromCharCode(line[i + 2], line[i + 3]), 16));
            i += 4;
            continue;
          } else {
            bytes.push(e === 110 ? 10 : e === 114 ? 13 : e === 116 ? 9 : e === 98 ? 8 : e === 97 ? 7 : e);
            i += 2;
            continue;
          }
        }
        bytes.push(c);
        i++;
      }
      out.push(Buffer.from(bytes));
    } else {
      const start = i;
      while (i < n && line[i] !== 32 && line[i] !== 9) i++;
      out.push(Buffer.from(line.subarray(start, i)));
    }
  }
}

const isHex = (c: number): boolean => (c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70);
