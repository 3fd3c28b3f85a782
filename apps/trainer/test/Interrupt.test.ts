// The CLI in child processes: SIGTERM mid-run then --resume equals an uninterrupted run; SIGKILL inside a
// checkpoint write leaves a temporary folder that the next start removes; `papo eval` prints its result
// when it cannot write it. The tiny model's SFT (a step takes tens of milliseconds) keeps each run to seconds.
import assert from "node:assert/strict"
import { spawn } from "node:child_process"
import { mkdir, mkdtemp, readdir, readFile, stat, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { before, describe, it } from "node:test"
import { Checkpoint } from "@papo/model"
import { Effect } from "effect"
import { loadConfig } from "../src/ConfigLoad.js"
import * as RunFolder from "../src/RunFolder.js"
import { runPromise, sft } from "../src/Train.js"

// The compiled CLI (`npm test` builds first): it starts faster than the sources through tsx.
const main = fileURLToPath(new URL("../dist/src/main.js", import.meta.url))
const pauseHook = fileURLToPath(new URL("./fixtures/pause-checkpoint.mjs", import.meta.url))
const steps = 24

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Starts `papo …`; `exited` resolves with the exit code and the output. */
const papo = (argv: ReadonlyArray<string>, options: { readonly env?: Record<string, string>; readonly preload?: string } = {}) => {
  const child = spawn(process.execPath, [...(options.preload ? ["--import", options.preload] : []), main, ...argv], {
    env: { ...process.env, ...options.env }
  })
  let stdout = "", stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr += d))
  const exited = new Promise<Finished>((resolve) => child.on("exit", (code) => resolve({ code, stdout, stderr })))
  return { child, exited }
}

const sftArgs = (dir: string, name: string) => [
  "sft",
  "worker.actor.model=tiny",
  "trainer.backend=wasm",
  "trainer.threads=1",
  "trainer.logger=lines",
  `trainer.outputDir=${dir}`,
  `trainer.experimentName=${name}`,
  "data.trainSize=64",
  "data.testSize=8",
  `sft.steps=${steps}`,
  "sft.batchSize=8",
  "sft.lr=1e-2",
  "sft.warmupSteps=1",
  "trainer.saveFreq=1",
  "trainer.valAvgK=1"
]

const until = async (check: () => Promise<boolean>) => {
  while (!(await check())) await new Promise((r) => setTimeout(r, 10))
}
const metricsLines = (dir: string) => readFile(join(dir, "metrics.jsonl"), "utf8").then((t) => t.split("\n").length - 1, () => 0)
const comparable = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("timing_s/")))
const metricsOf = async (dir: string) => (await Effect.runPromise(RunFolder.readMetrics(dir))).map(comparable)
const finalCheckpoint = (dir: string) => Checkpoint.load(join(dir, "checkpoints", `step-${String(steps).padStart(6, "0")}`, "actor"))
const temporaries = async (dir: string) =>
  [...await readdir(dir), ...(await readdir(join(dir, "checkpoints"))).map((f) => `checkpoints/${f}`)].filter((f) => f.split("/").at(-1)!.startsWith(".tmp-"))

describe("papo in a child process: signals, kills and unwritable folders", () => {
  let dir: string
  let full: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "papo-interrupt-"))
    // The uninterrupted run, in this process (one process start less).
    const overrides = [...sftArgs(dir, "full").slice(1).filter((a) => !a.startsWith("trainer.logger=")), "trainer.logger=quiet"]
    full = (await runPromise(sft(await Effect.runPromise(loadConfig({ overrides }))))).dir
  })

  it("SIGTERM mid-run exits 130 with a checkpoint; --resume then equals the uninterrupted run (metrics and weights)", async () => {
    const cut = join(dir, "cut")
    const { child, exited } = papo(sftArgs(dir, "cut"))
    await until(async () => (await metricsLines(cut)) >= 3)
    child.kill("SIGTERM")
    const first = await exited
    assert.equal(first.code, 130, first.stderr)
    assert.match(first.stderr, /SIGTERM: stopping after this step and saving a checkpoint/)
    const at = Number(/interrupted at step (\d+)/.exec(first.stdout)?.[1])
    assert.ok(at >= 3 && at < steps, `interrupted mid-run, at step ${at}`)
    assert.ok((await readdir(join(cut, "checkpoints"))).includes(`step-${String(at).padStart(6, "0")}`))
    assert.equal(await metricsLines(cut), at, "the metrics end at the checkpoint's step")

    const resumed = await papo([...sftArgs(dir, "cut"), "--resume"]).exited
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.deepEqual(await metricsOf(cut), await metricsOf(full))
    const [a, b] = await Promise.all([finalCheckpoint(full), finalCheckpoint(cut)])
    assert.deepEqual(b.weights, a.weights)
    assert.deepEqual(b.optimizer, a.optimizer)
    assert.deepEqual(b.extra, a.extra)
  })

  it("SIGKILL inside a checkpoint write: the next start removes the temporary folder and resumes from the one before", async () => {
    const killed = join(dir, "killed")
    const paused = join(dir, "paused")
    const { child, exited } = papo(sftArgs(dir, "killed"), { preload: pauseHook, env: { PAPO_TEST_PAUSE_AT: "step-000003", PAPO_TEST_PAUSED: paused } })
    await until(() => stat(paused).then(() => true, () => false))
    child.kill("SIGKILL")
    await exited
    const left = await temporaries(killed)
    assert.equal(left.length, 1, `the kill left the checkpoint's temporary folder: ${left.join(", ")}`)
    assert.match(left[0]!, /^checkpoints\/\.tmp-step-000003-\d+$/)

    const resumed = await papo([...sftArgs(dir, "killed"), "--resume"]).exited
    assert.equal(resumed.code, 0, resumed.stderr)
    assert.match(resumed.stdout, /removed 1 temporary file\(s\) left by an interrupted write: .*\.tmp-step-000003-/)
    assert.match(resumed.stdout, /resuming from .*step-000002/)
    assert.deepEqual(await temporaries(killed), [])
    assert.deepEqual(await metricsOf(killed), await metricsOf(full))
  })

  it("papo eval: an unwritable folder fails before the evaluation; a failed final write prints the result, then names the file", async () => {
    const blocker = join(dir, "a-file")
    await writeFile(blocker, "")
    const early = await papo(["eval", ...sftArgs(dir, "x").slice(1), `trainer.outputDir=${blocker}`, "--checkpoint", full]).exited
    assert.equal(early.code, 1)
    assert.match(early.stderr, new RegExp(`${blocker}/x: not writable`))
    assert.doesNotMatch(early.stdout, /checkpoint:/, "no evaluation was run")

    // eval.json is a non-empty folder: the evaluation runs, its file cannot replace it.
    await mkdir(join(dir, "late", "eval.json", "in-the-way"), { recursive: true })
    const late = await papo(["eval", ...sftArgs(dir, "late").slice(1), "--checkpoint", full]).exited
    assert.equal(late.code, 1)
    assert.match(late.stdout, new RegExp(`eval @${steps} digits: avg@1 [0-9.]+%.*\\ncheckpoint: ${full}/checkpoints/step-0000${steps}/actor\\n\\(not written: see the error below\\)`))
    assert.match(late.stderr, new RegExp(`papo eval: ${join(dir, "late", "eval.json")}: `))
  })
})
