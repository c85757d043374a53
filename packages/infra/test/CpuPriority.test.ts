import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import { afterEach, assert, describe, it } from "@effect/vitest"
import * as CpuPriority from "@walletun/infra/CpuPriority"

// A Node process with its usual threads (V8's platform workers, libuv's), idle for a while.
const idleNode = (detached: boolean): Promise<ChildProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000); console.log('up')"], {
      detached,
      stdio: ["ignore", "pipe", "ignore"],
    })
    child.once("error", reject)
    child.stdout!.once("data", () => resolve(child))
  })

const children: Array<ChildProcess> = []
afterEach(() => {
  for (const child of children.splice(0)) child.kill("SIGKILL")
})

/** The nice value of each thread of `pid` (field 19 of `/proc/<pid>/task/<tid>/stat`). */
const threadNices = (pid: number) =>
  fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])
  })

/** The scheduling policy of each thread of `pid` (field 41 of its stat: 0 normal, 5 `SCHED_IDLE`). */
const threadPolicies = (pid: number) =>
  fs.readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[38])
  })

describe.runIf(process.platform === "linux")("CpuPriority.lower", () => {
  it("sets every thread, and the session's group of a process that leads its session", async () => {
    const child = await idleNode(true)
    children.push(child)
    const pid = child.pid!
    assert.strictEqual(CpuPriority.sessionOf(pid), pid)
    const before = threadNices(pid)
    assert.isAbove(before.length, 1, "a Node process has more than one thread")
    assert.deepStrictEqual([...new Set(before)], [0])
    // Whether the kernel groups by session, and lets this process write the group, is the
    // machine's (CI's sandbox may not): what `lower` says it did must be what the group reads.
    const groupBefore = CpuPriority.autogroupNiceOf(pid)

    const lowered = CpuPriority.lower(pid, 7)
    assert.deepStrictEqual([...new Set(threadNices(pid))], [7])
    assert.strictEqual(lowered.threads, before.length)
    assert.strictEqual(CpuPriority.autogroupNiceOf(pid), lowered.autogroup ? 7 : groupBefore)
    if (groupBefore === undefined) assert.isFalse(lowered.autogroup)

    // Never back up: a lower value needs a privilege, and would undo an operator's choice.
    const again = CpuPriority.lower(pid, 3)
    assert.deepStrictEqual([...new Set(threadNices(pid))], [7])
    assert.deepStrictEqual(again, { nice: 3, threads: 0, autogroup: false })
  })

  it("idle: every thread under SCHED_IDLE", async () => {
    const child = await idleNode(true)
    children.push(child)
    const pid = child.pid!
    assert.deepStrictEqual([...new Set(threadPolicies(pid))], [0])
    assert.isTrue(CpuPriority.idle(pid))
    assert.deepStrictEqual([...new Set(threadPolicies(pid))], [5])
    // No such process: refused, said so.
    assert.isFalse(CpuPriority.idle(2 ** 22 + 1))
  })

  it("leaves the group alone for a process in another's session: it would lower its neighbours", async () => {
    const child = await idleNode(false)
    children.push(child)
    const pid = child.pid!
    assert.notStrictEqual(CpuPriority.sessionOf(pid), pid)
    const group = CpuPriority.autogroupNiceOf(process.pid)
    const lowered = CpuPriority.lower(pid, 5)
    assert.isFalse(lowered.autogroup)
    assert.deepStrictEqual([...new Set(threadNices(pid))], [5])
    assert.strictEqual(CpuPriority.autogroupNiceOf(process.pid), group)
    assert.strictEqual(CpuPriority.autogroupNiceOf(pid), group)
  })
})
