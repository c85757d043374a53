/** Shared adapters: each is a Context.Service (or layer) that every walletun service builds on. */
export * as Cql from "./Cql.ts"
export * as Health from "./Health.ts"
export * as Postgres from "./Postgres.ts"
export * as Rabbit from "./Rabbit.ts"
export * as Service from "./Service.ts"
export * as ServiceProcess from "./ServiceProcess.ts"
export * as Telemetry from "./Telemetry.ts"
export * as Uuid from "./Uuid.ts"
