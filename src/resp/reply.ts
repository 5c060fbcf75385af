/**
 * Reply encoding, RESP2 or RESP3 (after HELLO 3). Replies of one read are gathered and written
 * together: header text and short values go into one latin1 string (one write, no Buffer per
 * reply), long values are passed on as the Buffers they are.
 */
import type { Socket } from 'node:net';

/** A value at least this long is written as its own Buffer instead of being copied into the text. */
const INLINE_VALUE_MAX = 2048;

/** Where a writer counts the error replies it writes (the endpoint's RespStats). */
export interface ErrorCount {
  errorReplies: number;
}

export class ReplyWriter {
  /** Protocol version of the connection: 2 or 3. */
  proto = 2;

  /** @param counts - Counts every error reply written (INFO total_error_replies, shardgrid_resp_errors_total). */
  constructor(private readonly counts?: ErrorCount) {}
  private text = '';
  private chunks: Array<string | Buffer> = [];
  private size = 0;
  /** Bytes written by flush() so far. */
  private flushed = 0;

  /** Bytes gathered and not written yet. */
  get pending(): number {
    return this.size + this.text.length;
  }

  /** Bytes gathered over the writer's life, written or not: a reply's size is the difference across it. */
  get total(): number {
    return this.flushed + this.size + this.text.length;
  }

  ok(): void {
    this.text += '+OK\r\n';
  }

  simple(s: string): void {
    this.text += `+${s}\r\n`;
  }

  /**
   * An error reply; `msg` starts with its code (ERR, WRONGPASS, ...). It goes out as its UTF-8
   * bytes (a char over U+00FF written as is would keep only its low byte: U+010D ('č') became a
   * bare CR, which let an argument end the error line and forge a reply of its own).
   */
  error(msg: string): void {
    this.errorBytes(/[^\x00-\x7f]/.test(msg) ? Buffer.from(msg, 'utf8').toString('latin1') : msg);
  }

  /**
   * An error reply whose text is bytes, one per char (latin1): a client's argument echoed in it
   * (command-kit `echoed`) reads back as the bytes the client sent, as from Redis, invalid UTF-8
   * included. As Redis's addReplyErrorFormat: CR and LF at the end are dropped, each one inside
   * becomes a space.
   */
  errorBytes(msg: string): void {
    if (this.counts !== undefined) this.counts.errorReplies++;
    this.text += `-${msg.replace(/[\r\n]+$/, '').replace(/[\r\n]/g, ' ')}\r\n`;
  }

  int(n: number | bigint | string): void {
    this.text += `:${n}\r\n`;
  }

  nil(): void {
    this.text += this.proto === 3 ? '_\r\n' : '$-1\r\n';
  }

  bulk(b: Uint8Array | null | undefined): void {
    if (b === null || b === undefined) return this.nil();
    const buf = Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.length);
    if (buf.length < INLINE_VALUE_MAX) {
      this.text += `$${buf.length}\r\n${buf.toString('latin1')}\r\n`;
      return;
    }
    this.text += `$${buf.length}\r\n`;
    this.push(buf);
    this.text += '\r\n';
  }

  /** A bulk string of text (UTF-8). */
  bulkText(s: string): void {
    this.bulk(Buffer.from(s, 'utf8'));
  }

  array(n: number): void {
    this.text += `*${n}\r\n`;
  }

  /** A map of n pairs: '%' in RESP3, a flat array of 2n in RESP2. */
  map(n: number): void {
    this.text += this.proto === 3 ? `%${n}\r\n` : `*${n * 2}\r\n`;
  }

  /** A set: '~' in RESP3, an array in RESP2. */
  set(n: number): void {
    this.text += this.proto === 3 ? `~${n}\r\n` : `*${n}\r\n`;
  }

  /** Text as Redis's verbatim string in RESP3 ('=', "txt:"), a bulk string in RESP2 (INFO). */
  verbatim(s: string): void {
    if (this.proto !== 3) return this.bulkText(s);
    const b = Buffer.from(`txt:${s}`, 'utf8');
    this.text += `=${b.length}\r\n`;
    this.push(b);
    this.text += '\r\n';
  }

  private push(buf: Buffer): void {
    if (this.text.length > 0) {
      this.chunks.push(this.text);
      this.size += this.text.length;
      this.text = '';
    }
    this.chunks.push(buf);
    this.size += buf.length;
  }

  /** Appends everything `other` gathered (a reply written out of order) and empties it. */
  absorb(other: ReplyWriter): void {
    if (other.chunks.length > 0) {
      if (this.text.length > 0) {
        this.chunks.push(this.text);
        this.size += this.text.length;
        this.text = '';
      }
      for (const c of other.chunks) this.chunks.push(c);
      this.size += other.size;
    }
    this.text += other.text;
    other.text = '';
    other.chunks = [];
    other.size = 0;
  }

  /** Writes everything gathered to `socket`; returns false when its buffer is over the high-water mark. */
  flush(socket: Socket): boolean {
    this.flushed += this.size + this.text.length;
    let ok = true;
    if (this.chunks.length === 0) {
      if (this.text.length === 0) return true;
      ok = socket.write(this.text, 'latin1');
    } else {
      socket.cork();
      for (const c of this.chunks) ok = typeof c === 'string' ? socket.write(c, 'latin1') : socket.write(c);
      if (this.text.length > 0) ok = socket.write(this.text, 'latin1');
      socket.uncork();
    }
    this.text = '';
    this.chunks = [];
    this.size = 0;
    return ok;
  }
}
