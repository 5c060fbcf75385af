/**
 * Layout of the CP region: one SharedArrayBuffer made by the member (createGrid) and carried in
 * grid.handle, so every attached thread reaches the same primitives.
 *
 *   header   16 × int32                 magic | version | capacity | maxValueBytes | waiters | dirLock | count | spare…
 *   slots    capacity × 128 bytes       one primitive each (a hash table keyed by name, linear probing)
 *   names    capacity × 256 bytes       UTF-8 name of slot s at NAMES + s × 256
 *   values   capacity × 2 × maxValue    atomicRef: two buffers per slot (write the idle one, then flip)
 *   records  waiters × 64 bytes         waiter and permit-holding records, shared by all slots
 *   sessions waiters × 8 bytes          CP sessions (grid.cp.session()): CREATOR | OWNER per entry
 *
 * A slot (128 bytes; int32 words, then 8-byte cells at byte 64):
 *
 *   KIND | HASH | NAME_LEN | MUTEX | OWNER | NWAIT | ARRIVE | AVAIL | TOTAL | NHOLD | REF_SEQ | REF_LEN0 | REF_LEN1 | –×3
 *   TOKEN(f64) | DEADLINE(f64) | VALUE(i64) | REF_VER0(f64) | REF_VER1(f64) | –×3
 *
 * KIND is written last when a slot is claimed (under the directory lock), so a reader that sees a
 * kind also sees the name. OWNER is the lock word: holder << 2 | LEASED (2) | QUEUED (1), where
 * the holder is an owner id: threadId + 1 for a thread, or a session's id (from SESSION_BASE up,
 * below). MUTEX is a sync/mutex.ts futex (held by a thread, never by a session) that guards the
 * slow paths (queue, lease checks, semaphore counts, atomicRef writes).
 *
 * A record (64 bytes; int32 words, then 8-byte cells at byte 32):
 *
 *   STATE | SLOT | SEQ | WANT | GRANT | –×3 | TOKEN(f64) | LEASE(f64) | –×2
 *
 * STATE = owner << 2 | R_WAIT or R_HOLD, 0 when free: one compareExchange claims a record *and*
 * names its owner, so a thread that dies right after the claim still owns it for recovery.
 *
 * A session entry (8 bytes): CREATOR = threadId + 1 of the thread that opened it (0: free; one
 * compareExchange claims the entry), OWNER = the session's owner id, SESSION_BASE + entry +
 * k × waiters for the k-th session of that entry (kept when the entry is freed, so a closed
 * session's id is not reused until 2^28 / waiters sessions later). The creator's exit closes its
 * sessions (recoverThread).
 */
export const CP_MAGIC = 0x43507231; // 'CPr1'
export const CP_VERSION = 2;
export const CP_MAX_NAME_BYTES = 256;

// header (int32 words)
export const H_MAGIC = 0;
export const H_VERSION = H_MAGIC + 1;
export const H_CAPACITY = H_VERSION + 1;
export const H_MAX_VALUE = H_CAPACITY + 1;
export const H_WAITERS = H_MAX_VALUE + 1;
export const H_DIR_LOCK = H_WAITERS + 1;
export const H_COUNT = H_DIR_LOCK + 1;
export const HEADER_BYTES = 64;

// slot: int32 words from the slot's first word
export const S_KIND = 0;
export const S_HASH = S_KIND + 1;
export const S_NAME_LEN = S_HASH + 1;
export const S_MUTEX = S_NAME_LEN + 1;
export const S_OWNER = S_MUTEX + 1;
export const S_NWAIT = S_OWNER + 1;
export const S_ARRIVE = S_NWAIT + 1;
export const S_AVAIL = S_ARRIVE + 1;
export const S_TOTAL = S_AVAIL + 1;
export const S_NHOLD = S_TOTAL + 1;
export const S_REF_SEQ = S_NHOLD + 1;
export const S_REF_LEN0 = S_REF_SEQ + 1; // S_REF_LEN0 + b for buffer b
export const SLOT_WORDS_I32 = 16;
// slot: 8-byte cells from the slot's first cell (byte 64 of the slot)
export const D_TOKEN = 0;
export const D_DEADLINE = D_TOKEN + 1;
export const L_VALUE = D_DEADLINE + 1;
export const D_REF_VER0 = L_VALUE + 1; // D_REF_VER0 + b for buffer b
export const SLOT_BYTES = 128;

// record
export const R_STATE = 0;
export const R_SLOT = R_STATE + 1;
export const R_SEQ = R_SLOT + 1;
export const R_WANT = R_SEQ + 1;
export const R_GRANT = R_WANT + 1;
export const R_CELLS_BYTE = 32;
export const RD_TOKEN = 0;
export const RD_LEASE = RD_TOKEN + 1;
export const RECORD_BYTES = 64;
export const R_WAIT = 1;
export const R_HOLD = 2;

// session entry (int32 words from the entry's first word)
export const E_CREATOR = 0;
export const E_OWNER = 1;
export const SESSION_BYTES = 8;
/** Owner ids from here up are sessions; below are threads (threadId + 1). owner << 2 fits an int32. */
export const SESSION_BASE = 1 << 28;
export const OWNER_LIMIT = 1 << 29;

// kinds
export const K_LOCK = 1;
export const K_LONG = 2;
export const K_REF = 3;
export const K_SEMAPHORE = 4;
export const KIND_NAMES = ['', 'lock', 'atomicLong', 'atomicRef', 'semaphore'] as const;

export interface CpLimits {
  capacity: number;
  maxValueBytes: number;
  waiters: number;
}

/** Byte offsets of the areas for given limits. */
export function cpAreas(l: CpLimits): { slots: number; names: number; values: number; records: number; sessions: number; total: number } {
  const slots = HEADER_BYTES;
  const names = slots + l.capacity * SLOT_BYTES;
  const values = names + l.capacity * CP_MAX_NAME_BYTES;
  const records = values + align8(l.capacity * 2 * l.maxValueBytes);
  const sessions = records + l.waiters * RECORD_BYTES;
  return { slots, names, values, records, sessions, total: sessions + l.waiters * SESSION_BYTES };
}

const align8 = (n: number): number => (n + 7) & ~7;
