/** The operator tools as a library: the invariant audit, the DLQ tools and the transaction lookup. */
export * as Audit from "./Audit.ts"
export * as Connections from "./Connections.ts"
export * as Dlq from "./Dlq.ts"
export * as Lookup from "./Lookup.ts"
export * as Runner from "./Runner.ts"
export * as Topology from "./Topology.ts"
