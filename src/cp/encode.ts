/** atomicRef value encoding, shared by the in-process and the clustered primitives. */
import { ValueTooLargeError } from '../errors.js';
import { encodeMsgpack } from '../storage/codec.js';

/**
 * msgpack bytes of an atomicRef value (null for undefined: unset). Over `max` bytes:
 * GRID_ERR_VALUE_TOO_LARGE when `bounded` (a value to store), else `tooLarge` (an expected value
 * of a compare, which then compares as it will).
 */
export function encodeRefValue(v: unknown, name: string, max: number, limit: string, bounded: boolean, tooLarge: (b: Uint8Array) => Uint8Array = (b) => b): Uint8Array | null {
  if (v === undefined) return null;
  const b = encodeMsgpack(v); // UnencodableValueError when it cannot be
  if (b.length <= max) return b;
  if (bounded) throw new ValueTooLargeError(`atomicRef '${name}': value is ${b.length} bytes encoded, over ${limit} (${max})`, { limit });
  return tooLarge(b);
}
