/** The workshop's tools for tests, the benchmarks and the chaos run; no production package imports it. */
export * as Flags from "./Flags.ts"
export * as Http from "./Http.ts"
export * as ScratchDatabase from "./ScratchDatabase.ts"
export * as ServiceProcess from "./ServiceProcess.ts"
export * as ServiceUnderTest from "./ServiceUnderTest.ts"
export * as TcpProxy from "./TcpProxy.ts"
