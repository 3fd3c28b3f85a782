import assert from "node:assert/strict"
import { mkdir, mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import type { Evaluate } from "@papo/trainer"
import { Effect } from "effect"
import { checksText, runStudy, warmStartChecks } from "../src/Runner.js"
import * as Study from "../src/Study.js"

/** A warm start's evaluation with only what the checks read: uncued accuracy and conflict prior-following. */
const evalWith = (uncued: number, prior: number) =>
  ({ subsets: { uncued: { accuracy: uncued }, conflict: { priorRate: prior } } }) as unknown as Evaluate.EvalResult

const thresholds = { canSee: 0.8, followsPrior: 0.6, followsPriorMax: 0.9 }

test("warm-start checks: valid only when it can see and follows the cue within the band", () => {
  assert.equal(warmStartChecks(evalWith(0.96, 0.755), thresholds).valid, true)
  assert.equal(warmStartChecks(evalWith(0.79, 0.755), thresholds).valid, false, "cannot see")
  assert.equal(warmStartChecks(evalWith(0.96, 0.55), thresholds).valid, false, "no shortcut")
  assert.equal(warmStartChecks(evalWith(0.985, 0.995), thresholds).valid, false, "so much prior that RL never samples a correct reading")
  assert.equal(warmStartChecks(evalWith(0.985, 0.995), { canSee: 0.8, followsPrior: 0.6 }).valid, true, "no upper bound unless asked")
  assert.equal(warmStartChecks({ subsets: {} } as unknown as Evaluate.EvalResult, thresholds).valid, false, "missing subsets")
})

test("warm-start checks in words name each figure and its bounds", () => {
  const text = checksText(warmStartChecks(evalWith(0.96, 0.755), thresholds))
  assert.match(text, /uncued accuracy 96\.0% \(needs ≥ 80\.0%/)
  assert.match(text, /follow the cue 75\.5% \(needs 60\.0% … 90\.0%/)
})

// Real tiny runs (the tiny model on the digit task): the runner must hand each run the verifier its own
// `worker.reward` describes, and read back what ran from the run folder.
const tiny = {
  worker: { actor: { model: "tiny", globalBatchSize: 2, microBatchSizePerDeviceForUpdate: 4 }, rollout: { n: 2 } },
  trainer: { backend: "wasm", logger: "quiet", threads: 1, maxSteps: 1, saveFreq: 0, valAvgK: 1, logSampleFreq: 0, curveFreq: 0 },
  data: { trainSize: 16, testSize: 4, rolloutBatchSize: 2 }
}
const tinyStudy = (arms: ReadonlyArray<Record<string, unknown>>, base: Record<string, unknown> = {}) =>
  JSON.stringify({ description: "tiny", seeds: [1], base: { ...tiny, ...base }, sft: { sft: { steps: 2, batchSize: 4, warmupSteps: 1 } }, arms })

test("each run grades with the verifier of its own worker.reward, and records it with the backend that ran", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-study-"))
  const text = tinyStudy(
    [{ label: "A", preset: "grpo" }, { label: "B", preset: "grpo", overrides: { worker: { reward: { mode: "mathruler" } } } }],
    { worker: { ...tiny.worker, reward: { mode: "math-verify" } } }
  )
  const plan = await Effect.runPromise(Study.plan("verifiers", text, { outputDir: dir }))
  const result = await Effect.runPromise(runStudy(plan, { backend: "wasm" }))
  assert.deepEqual(result.runs.map((r) => [r.label, r.verifier]), [["SFT", "math-verify"], ["A", "math-verify"], ["B", "mathruler"]])
  for (const r of result.runs) {
    assert.match(r.backend ?? "", /^wasm( \+ native kernels| \(native kernels off)/, `${r.label}: ${r.backend}`)
    assert.ok(r.events.every((e) => e["event"] !== "start"), "start events are not the collapse guard's")
  }
  // Rerun: the finished runs are reused, and what ran is read back from their folders.
  const again = await Effect.runPromise(runStudy(plan, { backend: "wasm" }))
  assert.deepEqual(again.runs.map((r) => [r.verifier, r.backend]), result.runs.map((r) => [r.verifier, r.backend]))
})

test("a failing run stops the study with a RunFailedError naming the run, seed and folder", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-study-"))
  const text = tinyStudy([{ label: "A", preset: "grpo" }], { data: { ...tiny.data, train: join(dir, "missing.jsonl") } })
  const plan = await Effect.runPromise(Study.plan("failing", text, { outputDir: dir }))
  const r = await Effect.runPromise(Effect.result(runStudy(plan, { backend: "wasm" })))
  assert.equal(r._tag, "Failure")
  if (r._tag !== "Failure") return
  assert.equal(r.failure._tag, "RunFailedError")
  if (r.failure._tag !== "RunFailedError") return
  assert.deepEqual([r.failure.run, r.failure.seed, r.failure.dir], ["SFT warm start", 1, join(dir, "failing", "seed-1", "sft")])
  assert.match(r.failure.message, /missing\.jsonl/)
})

test("a torn done.json stops the study with a StudyFileError naming the file", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-study-"))
  const plan = await Effect.runPromise(Study.plan("torn", tinyStudy([{ label: "A", preset: "grpo" }]), { outputDir: dir }))
  const warm = join(dir, "torn", "seed-1", "sft")
  await mkdir(warm, { recursive: true })
  await writeFile(join(warm, "done.json"), "{\"eval\": {")
  const r = await Effect.runPromise(Effect.result(runStudy(plan, { backend: "wasm" })))
  assert.equal(r._tag === "Failure" && r.failure._tag, "StudyFileError")
  assert.match(r._tag === "Failure" ? r.failure.message : "", new RegExp(`^${join(warm, "done.json")}: not JSON: `))
})
