/**
 * The FAST service: the primary's and the copies' side of FAST records (transport/fast.ts) — GET
 * and MGET answered with the value bytes copied straight out of shared memory, SET applied under
 * the partition lock and replicated in the same run, REP applied on a copy under the epoch fence.
 * Sits beside routing, over the replicas layer (native-notes.md, "Cluster layers").
 */
import { KeyTooLargeError, MemoryFullError, ProtocolError, ValueTooLargeError } from '../errors.js';
import { T_NUMBER } from '../storage/layout.js';
import { READ_SPIN_LIMIT, type ShardStore } from '../storage/store.js';
import { ABSENT, FastWriter, R_OK, R_STATE, R_STATES, STATE_HEAD, STATES_HEAD, VALUE_HEAD, readF64, type FastMap, type FastReader } from '../transport/fast.js';
import type { FastPeer } from '../transport/transport.js';
import type { MemberContext } from './context.js';
import { rawSize, writeRaw } from './fast-ops.js';
import type { RawState } from './records.js';
import type { Replicas } from './replicas.js';
import { keyOf } from './unsettled.js';

export class FastService {
  /** Reply records of FAST requests are built here, then copied into the peer's frame. */
  private readonly out = new FastWriter();
  private readonly store: ShardStore;

  constructor(
    private readonly ctx: MemberContext,
    private readonly r: Replicas,
  ) {
    this.store = ctx.store;
  }

  /** This member's store id of a map named on a connection (registered on first use, cached on the FastMap). */
  private fastMapId(m: FastMap): number {
    if (m.local >= 0) return m.local;
    const id = this.store.mapId(m.name);
    if (id < 0) throw new ProtocolError(`cannot register map '${m.name.slice(0, 40)}' (registry full or name too long)`);
    return (m.local = id);
  }

  /** Sets the store's current key to the record's key; its partition. */
  private fastKey(r: FastReader, mapId: number, off = r.keyOff, len = r.keyLen): number {
    const st = this.store;
    if (st.setKeyBytes(r.buf, off, len, mapId) < 0) throw new KeyTooLargeError(`key is ${len} bytes, over maxKeyBytes (${st.maxKeyBytes})`, { size: len, limit: st.maxKeyBytes });
    return st.kpart;
  }

  /**
   * Reads the STATE of the store's current key (map `mapId`, partition p) optimistically and
   * writes it, the value bytes copied straight out of shared memory: as a whole STATE reply
   * record [R_STATE, id, STATE] into the peer's frame when `peer` is given, else appended to
   * `this.out`. False (nothing written) when a writer kept the partition busy through the spin.
   */
  private writeStateOf(p: number, mapId: number, peer: FastPeer | undefined, id: number): boolean {
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s < 0) continue;
      const off = st.probe(p, mapId);
      let vlen = -1;
      let vo = 0;
      let exp = 0;
      if (off >= 0) {
        exp = st.expiresAt(off);
        if (exp === 0 || exp > Date.now()) {
          vlen = st.valueLength(off);
          vo = st.valueOffset(off);
          if (!st.inBounds(vo + vlen)) continue; // torn view
        }
      }
      const size = vlen < 0 ? 1 : VALUE_HEAD + vlen;
      let w: FastWriter;
      if (peer !== undefined) {
        if (STATE_HEAD + size > peer.maxRecord) {
          if (!st.readValid(p, s)) continue;
          throw new ValueTooLargeError(`value of ${vlen} bytes does not fit a frame (maxPayload ${peer.maxRecord + 1})`, { size: vlen });
        }
        w = peer.room(STATE_HEAD + size, true);
      } else {
        w = this.out;
        w.ensure(size);
      }
      const mark = w.len;
      if (peer !== undefined) {
        w.u8(R_STATE);
        w.u32(id);
      }
      if (vlen < 0) w.u8(ABSENT);
      else {
        w.u8(st.typeOf(off));
        w.f64(exp);
        w.u32(vlen);
        w.bytes(st.u8, vo, vo + vlen);
      }
      if (st.readValid(p, s)) {
        if (vlen >= 0) st.touch(off);
        return true;
      }
      w.len = mark;
    }
    return false;
  }

  /**
   * Moves the reply record built in `this.out` into the peer's frame (one copy of a few hundred
   * bytes, so the frame is never left with half a record and its size is known before it joins).
   */
  private sendOut(peer: FastPeer): void {
    const o = this.out;
    if (o.len > peer.maxRecord) {
      const n = o.len;
      o.len = 0;
      throw new ValueTooLargeError(`reply of ${n} bytes does not fit a frame (maxPayload ${peer.maxRecord + 1})`, { size: n });
    }
    peer.room(o.len, true).bytes(o.buf, 0, o.len);
    o.len = 0;
  }

  /** MGET: the STATES reply built in `this.out`, then moved into the frame; false when a partition was busy. */
  private readMany(peer: FastPeer, r: FastReader, mapId: number): boolean {
    const n = r.count;
    // all or nothing: every key's partition must be primary here before anything is read
    for (let i = 0; i < n; i++) this.r.assertPrimary(this.fastKey(r, mapId, r.keyOffs[i], r.keyLens[i]));
    const o = this.out;
    o.len = 0;
    o.ensure(STATES_HEAD);
    o.u8(R_STATES);
    o.u32(r.id);
    o.u32(n);
    for (let i = 0; i < n; i++) {
      const p = this.fastKey(r, mapId, r.keyOffs[i], r.keyLens[i]);
      if (this.r.unsettledIn(p) || !this.writeStateOf(p, mapId, undefined, 0)) {
        o.len = 0;
        return false;
      }
    }
    this.sendOut(peer);
    return true;
  }

  /**
   * GET (one key, R_STATE) and MGET (R_STATES): every value copied from shared memory into the
   * reply record. An MGET is all or nothing: each key's partition must be primary here first.
   */
  serveRead(peer: FastPeer, r: FastReader, many: boolean): void {
    const mapId = this.fastMapId(r.map);
    if (!many) {
      const p = this.fastKey(r, mapId);
      this.r.assertPrimary(p);
      // a partition with writes being replicated takes the path below: their keys serve what the copies hold
      if (!this.r.unsettledIn(p) && this.writeStateOf(p, mapId, peer, r.id)) return;
    } else if (this.readMany(peer, r, mapId)) return;
    const n = many ? r.count : 1;
    // a writer kept a partition busy, or it has unsettled keys: read (under the lock where needed) and answer then
    const id = r.id;
    const name = r.map.name;
    const keys: string[] = [];
    if (!many) keys.push(r.key());
    else for (let k = 0; k < n; k++) keys.push(r.buf.toString('utf8', r.keyOffs[k], r.keyOffs[k] + r.keyLens[k]));
    Promise.all(
      keys.map((key) =>
        this.r.records.withState(
          name,
          key,
          (p2, s) => {
            this.r.assertPrimary(p2);
            const u = this.r.unsettledOf(name, key);
            return u === undefined ? s : u.stable; // stable null = absent
          },
          true,
        ),
      ),
    ).then(
      (states) => this.replyRaw(peer, id, states, many),
      (e: unknown) => peer.replyError(id, e),
    );
  }

  /** Answers with RawStates: one (R_STATE) or a list (R_STATES). */
  private replyRaw(peer: FastPeer, id: number, states: RawState[], many = false): void {
    if (!peer.isOpen) return;
    let size = many ? STATES_HEAD : STATE_HEAD;
    for (const s of states) size += rawSize(s);
    if (size > peer.maxRecord) {
      peer.replyError(id, new ValueTooLargeError(`reply of ${size} bytes does not fit a frame (maxPayload)`));
      return;
    }
    const w = peer.room(size, true);
    w.u8(many ? R_STATES : R_STATE);
    w.u32(id);
    if (many) w.u32(states.length);
    for (const s of states) writeRaw(w, s);
  }

  /**
   * A SET routed here: written under the partition lock, and in the same synchronous run (still
   * under the lock) its state — the value bytes of the request — is shipped to every backup and
   * pending copy as a REP; the OK goes back once all live copies applied it.
   */
  serveSet(peer: FastPeer, r: FastReader): void {
    const st = this.store;
    const mapId = this.fastMapId(r.map);
    const p = this.fastKey(r, mapId);
    this.r.assertPrimary(p);
    if (r.vLen > st.maxValueBytes) throw new ValueTooLargeError(`value is ${r.vLen} bytes, over maxValueBytes (${st.maxValueBytes})`, { size: r.vLen, limit: st.maxValueBytes });
    const { buf, id, keyOff, keyLen, vType, vExp, vOff, vLen } = r;
    const name = r.map.name;
    const rid = r.rid();
    const rec = this.r.records;
    if (rec.beginNow(p)) {
      // the common case: written in this synchronous run, where the store's current key is still
      // this one and the primary and lease checks above still hold (nothing ran in between)
      let applied: boolean;
      try {
        applied = this.writeSet(peer, id, p, mapId, name, rid, buf, keyOff, keyLen, vType, vExp, vOff, vLen);
      } finally {
        rec.endNow(p);
      }
      if (!applied) this.resend(peer, id, p, name, buf, keyOff, keyLen, rid!);
      return;
    }
    // p is busy (a virtual node's sweep, earlier writes queued): in turn, checked again then
    const res = rec.serial(p, () => {
      this.r.assertPrimary(p);
      st.setKeyBytes(buf, keyOff, keyLen, mapId);
      return this.writeSet(peer, id, p, mapId, name, rid, buf, keyOff, keyLen, vType, vExp, vOff, vLen);
    });
    const again = (applied: boolean): void => (applied ? undefined : this.resend(peer, id, p, name, buf, keyOff, keyLen, rid!));
    if (res instanceof Promise) res.then(again, (e: unknown) => peer.replyError(id, e));
    else again(res);
  }

  /**
   * serveSet's write, under p's lock with the store's current key set to the request's: false
   * when it is a retry of a SET this partition already applied (its reply was lost: applying it
   * again could undo a later write; `resend` answers it once the copies hold the key's state).
   */
  private writeSet(
    peer: FastPeer, id: number, p: number, mapId: number, name: string, rid: string | undefined,
    buf: Buffer, keyOff: number, keyLen: number, vType: number, vExp: number, vOff: number, vLen: number,
  ): boolean {
    if (rid !== undefined && this.r.dedupe.has(p, rid)) return false;
    const st = this.store;
    const ks = buf.toString('utf8', keyOff, keyOff + keyLen);
    // until its replication settles, reads of the key serve what the copies hold (unsettled.ts)
    const un = this.r.unsettled;
    const uk = keyOf(name, ks);
    const u = un.join(uk) ?? un.create(p, uk, this.r.records.stateHere(p, mapId));
    const num = vType === T_NUMBER ? readF64(buf, vOff) : 0;
    if (st.put(p, mapId, vType, vType === T_NUMBER ? null : buf.subarray(vOff, vOff + vLen), vLen, num, vExp) < 0) {
      un.abandon(uk, u);
      throw new MemoryFullError(st.fullMessage());
    }
    this.r.shipPut(p, name, ks, keyLen, uk, u, rid, undefined, buf, vType, vExp, vOff, vLen, (err) => replyOk(peer, id, err));
    return true;
  }

  /** A SET retried under request id `rid` that partition p already applied: answered once the copies hold the key's state again. */
  private resend(peer: FastPeer, id: number, p: number, name: string, buf: Buffer, keyOff: number, keyLen: number, rid: string): void {
    const reply = (err: unknown): void => replyOk(peer, id, err);
    this.r.replicateAgain(p, name, buf.toString('utf8', keyOff, keyOff + keyLen), rid, undefined).then(() => reply(undefined), reply);
  }

  /** A replicated write (REP) on a copy: fenced by table version, applied in arrival order per partition. */
  serveRep(peer: FastPeer, r: FastReader): void {
    const st = this.store;
    const mapId = this.fastMapId(r.map);
    if (st.setKeyBytes(r.buf, r.keyOff, r.keyLen, mapId) < 0) throw new ProtocolError('replicated key is over maxKeyBytes');
    const p = st.kpart;
    this.r.checkCopy(p, r.version, peer.id, r.tableVersion);
    const rec = this.r.records;
    if (rec.beginNow(p)) {
      // the common case: applied in this synchronous run (the fence above and the store's current key still hold)
      try {
        this.applyRep(p, mapId, r.rid(), r.buf, r.vType, r.vExp, r.vOff, r.vLen);
      } finally {
        rec.endNow(p);
      }
      replyOk(peer, r.id, undefined);
      return;
    }
    const { buf, id, keyOff, keyLen, vType, vExp, vOff, vLen } = r;
    const from = peer.id;
    const epoch = r.version;
    const tv = r.tableVersion;
    const rid = r.rid();
    const res = rec.serial(p, () => {
      this.r.checkCopy(p, epoch, from, tv);
      st.setKeyBytes(buf, keyOff, keyLen, mapId);
      this.applyRep(p, mapId, rid, buf, vType, vExp, vOff, vLen);
    });
    if (res instanceof Promise) res.then(() => replyOk(peer, id, undefined), (e: unknown) => peer.replyError(id, e));
    else replyOk(peer, id, undefined);
  }

  /** serveRep's write, under p's lock with the store's current key set to the REP's: records `rid` and applies the state. */
  private applyRep(p: number, mapId: number, rid: string | undefined, buf: Buffer, vType: number, vExp: number, vOff: number, vLen: number): void {
    const st = this.store;
    if (rid !== undefined) this.r.dedupe.put(p, rid, undefined);
    if (vType < 0) {
      st.remove(p, mapId, Date.now());
      return;
    }
    const num = vType === T_NUMBER ? readF64(buf, vOff) : 0;
    // over this member's maxValueBytes, or no room for it: the key is dropped here, as an
    // eviction (Records.putCopyState)
    if (vLen > st.maxValueBytes) {
      st.evictKey(p, mapId);
      return;
    }
    if (st.put(p, mapId, vType, vType === T_NUMBER ? null : buf.subarray(vOff, vOff + vLen), vLen, num, vExp) < 0) st.evictKey(p, mapId);
  }
}

/** Answers a SET or REP: OK, or the error that failed it (nothing when the link closed meanwhile). */
function replyOk(peer: FastPeer, id: number, err: unknown): void {
  if (!peer.isOpen) return;
  if (err !== undefined) {
    peer.replyError(id, err);
    return;
  }
  const w = peer.room(5, true);
  w.u8(R_OK);
  w.u32(id);
}
