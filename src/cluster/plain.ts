/**
 * Plain values (arguments, compute results, aggregation partials) as they cross the wire in a
 * grid.op, and a member's compute pool (entry processors run there: compute/local.ts).
 */
import { ProtocolError, UnencodableValueError } from '../errors.js';
import { decodeMsgpack, encodeMsgpack } from '../storage/codec.js';

/**
 * A plain value as it crosses the wire in a grid.op (an argument compared or computed on the
 * primary, a compute result, an aggregation partial): the value codec's msgpack bytes, so every
 * type the codec keeps (typed arrays, DataView, Set, bigints over 64 bits …) arrives as itself.
 * The wire's own packer has no moreTypes (its reader refuses extension types from peers), and
 * msgpackr 2.1 packs a typed array other than Uint8Array there as one byte per element followed
 * by stale buffer bytes. undefined stays undefined (the wire keeps it apart from null).
 */
export function packPlain(v: unknown): Uint8Array | undefined {
  return v === undefined ? undefined : encodeMsgpack(v);
}

/**
 * packPlain of the argument of a compute or aggregate call: in a cluster it travels to the
 * members that run the code, so it must be msgpack-encodable (in one process it is handed over
 * as it is). The codec's own message spoke of a value that "cannot be stored".
 */
export function packArg(v: unknown, what: string): Uint8Array | undefined {
  try {
    return packPlain(v);
  } catch (e) {
    if (!(e instanceof UnencodableValueError)) throw e;
    throw new UnencodableValueError(`the argument of ${what} cannot be sent to the members that run it (a cluster sends it as msgpack): ${e.message.replace(/^value cannot be encoded: /, '')}`);
  }
}

/** The value packPlain sent (peer data: bytes or undefined, else ProtocolError). */
export function unpackPlain(b: unknown, what: string): unknown {
  if (b === undefined) return undefined;
  if (!(b instanceof Uint8Array)) throw new ProtocolError(`grid.op: the ${what} must be msgpack bytes`);
  try {
    return decodeMsgpack(b);
  } catch {
    throw new ProtocolError(`grid.op: the ${what} is not valid msgpack`);
  }
}
