/** The Raft core: a pure, deterministic state machine (imports nothing outside src/raft). */
export { RaftNode, quorum } from './node.js';
export type { Ready, ReadState, RaftNodeOptions, PersistentState, Role, UnsafeOptions } from './node.js';
export {
  validateMessage, LIMITS, RaftError, RaftNotLeaderError, RaftTransferInProgressError, RaftConfChangePendingError,
  RaftInvalidArgumentError, RaftReadBusyError,
} from './types.js';
export type {
  NodeId, Config, ConfChange, ConfChangeKind, Entry, Snapshot, HardState, RaftMessage, MessageType,
} from './types.js';
export { Rand, mixSeed, hashString } from './rand.js';
