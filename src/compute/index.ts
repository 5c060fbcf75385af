/**
 * Compute next to the data (issue 5). Entry processors run in GridMap.compute / computeLocal;
 * aggregations in the grid's piscina pool. The two functions below are the building blocks of a
 * cluster-wide aggregation: each member aggregates the partitions it owns, the caller combines.
 */
export { aggregatePartitions, combineAndFinish } from './aggregate.js';
export { ComputePool } from './pool.js';
export type { Aggregator, AggregatorRef, BuiltinAggregator, ComputeRef, EntryProcessor, FieldArg, ProcessorEntry } from './types.js';
