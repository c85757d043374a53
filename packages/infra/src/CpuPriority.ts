/**
 * A process's CPU priority, lowered so that background work yields the CPU to the money path when
 * they share a machine (the webhook service's deliveries: see `WEBHOOK_CPU_PRIORITY`).
 *
 * On Linux a nice value belongs to each thread, not to the process: `lower` sets it on every thread
 * the process has (threads started later inherit it from the thread that starts them). Where the
 * scheduler groups processes by session (`CONFIG_SCHED_AUTOGROUP`, on by default in most
 * distributions), a nice value only orders the threads of one session against each other, and the
 * sessions share the CPU by their group's nice value; so a process that leads its own session (as
 * `npm start` runs each service) also sets its group's, `/proc/<pid>/autogroup`. A process that
 * does not lead its session leaves the group alone: it would lower its neighbours too.
 * Elsewhere (no `/proc`), the main thread's priority is set, as `os.setPriority` does.
 *
 * Raising a nice value needs no privilege; lowering one does, so `lower` never lowers one.
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import { Config, Effect, Layer, Schema } from "effect"

/** What `lower` changed: the threads it set, and whether it set the session's group. */
export interface Lowered {
  readonly nice: number
  readonly threads: number
  readonly autogroup: boolean
}

const readText = (file: string): string | undefined => {
  try {
    return fs.readFileSync(file, "utf8")
  } catch {
    return undefined
  }
}

/** The session id of `pid`, from `/proc/<pid>/stat` (the field after the command's closing parenthesis, fourth). */
export const sessionOf = (pid: number): number | undefined => {
  const stat = readText(`/proc/${pid}/stat`)
  if (stat === undefined) return undefined
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return Number(fields[3])
}

/** The nice value of `/proc/<pid>/autogroup` (`/autogroup-N nice K`), if the kernel groups by session. */
export const autogroupNiceOf = (pid: number): number | undefined => {
  const match = readText(`/proc/${pid}/autogroup`)?.match(/nice (-?\d+)/)
  return match === undefined || match === null ? undefined : Number(match[1])
}

const setThread = (tid: number, nice: number): boolean => {
  try {
    // Only ever upwards: a lower value than the thread has needs a privilege, and is not asked for.
    if (os.getPriority(tid) >= nice) return false
    os.setPriority(tid, nice)
    return true
  } catch {
    // The thread ended meanwhile.
    return false
  }
}

/** Sets every thread of `pid`, and its session's group when it leads the session, to at least `nice` (0 to 19). */
export const lower = (pid: number, nice: number): Lowered => {
  let tasks: ReadonlyArray<string>
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`)
  } catch {
    tasks = [String(pid)]
  }
  const threads = tasks.filter((tid) => setThread(Number(tid), nice)).length
  const current = autogroupNiceOf(pid)
  let autogroup = false
  if (current !== undefined && current < nice && sessionOf(pid) === pid) {
    try {
      fs.writeFileSync(`/proc/${pid}/autogroup`, String(nice))
      autogroup = true
    } catch {
      autogroup = false
    }
  }
  return { nice, threads, autogroup }
}

/**
 * Puts every thread of `pid` under the `SCHED_IDLE` policy (`chrt --idle --all-tasks`, util-linux):
 * it runs only on CPU time that no normal thread of its scheduling group wants. Node has no call
 * for a scheduling policy. False where `chrt` is missing or refuses.
 */
export const idle = (pid: number): boolean => {
  try {
    execFileSync("chrt", ["--idle", "--all-tasks", "--pid", "0", String(pid)], { stdio: "ignore", timeout: 5_000 })
    return true
  } catch {
    return false
  }
}

/** How much of the CPU a process takes when the machine is busy. */
export const Priority = Schema.Literals(["normal", "low", "idle"])
/** `normal`: as started; `low`: nice 10; `idle`: nice 19 and `SCHED_IDLE`. */
export type Priority = typeof Priority.Type

/** Sets the current process to `priority`; what it did, for the log. */
export const apply = (priority: Priority) => {
  if (priority === "normal") return undefined
  const lowered = lower(process.pid, priority === "low" ? 10 : 19)
  return { ...lowered, idle: priority === "idle" ? idle(process.pid) : false }
}

/**
 * Sets the current process to the priority of the variable `name` (`normal`, `low` or `idle`;
 * `fallback` when unset) at start-up, and logs what it did.
 */
export const layer = (name: string, fallback: Priority) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const priority = yield* Config.schema(Priority, name).pipe(Config.withDefault(fallback))
      const applied = yield* Effect.sync(() => apply(priority))
      if (applied === undefined) return
      yield* Effect.logInfo("CPU priority lowered").pipe(Effect.annotateLogs({ priority, ...applied }))
    }),
  )
