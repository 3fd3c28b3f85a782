import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { initialState, observe, type Verdict } from "../src/CollapseGuard.js"

const step = (kl: number, reward: number, clip: number, ent: number) => ({
  "actor/kl_prcp_loss": -kl,
  "reward/accuracy": reward,
  "actor/pg_clipfrac_higher": clip,
  "actor/ori_entropy_loss": ent
})

const run = (steps: ReadonlyArray<Record<string, number>>): Array<Verdict> => {
  let s = initialState
  return steps.map((m) => {
    const r = observe(s, m)
    s = r.state
    return r.verdict
  })
}

test("the paper's collapse (KL up, reward down, clipping and entropy up) is caught, after `patience` warnings", () => {
  const healthy = Array.from({ length: 30 }, (_, i) => step(0.05 + 0.002 * (i % 3), 0.6, 0.02, 0.5))
  const collapsing = Array.from({ length: 15 }, (_, i) => step(0.4 * (i + 1), 0.2, 0.2, 0.9))
  const verdicts = run([...healthy, ...collapsing])
  assert.ok(verdicts.slice(0, 30).every((v) => v.level === "ok"))
  const first = verdicts.findIndex((v) => v.level !== "ok")
  // The running median of 10 steps turns once half of them are collapsed.
  assert.equal(first, 34)
  assert.deepEqual(verdicts.slice(first, first + 4).map((v) => v.level), ["warning", "warning", "collapse", "collapse"])
  assert.deepEqual(verdicts[first + 3]!.signals.map((s) => s.name), ["kl_prcp", "reward", "clipfrac", "entropy"])
})

test("a slow collapse is caught too: the reference is the run's best level, not a moving window", () => {
  // Reward falls from 0.5 to 0 and entropy doubles over 80 steps, with KL_prcp flat (as the γ = 0.5 run here).
  const steps = Array.from({ length: 100 }, (_, i) => {
    const t = Math.max(0, Math.min(1, (i - 20) / 80))
    return step(0.25, 0.5 * (1 - t), 0, 0.3 * (1 + t))
  })
  const v = run(steps)
  const first = v.findIndex((x) => x.level === "collapse")
  assert.ok(first > 20 && first < 100, `collapse at ${first}`)
  assert.deepEqual(v[first]!.signals.map((s) => s.name), ["reward", "entropy"])
})

test("a rising KL alone, with rewards holding, is not a collapse: PAPO is meant to raise KL_prcp", () => {
  const steps = Array.from({ length: 40 }, (_, i) => step(0.05 * 1.15 ** i, 0.6, 0.02, 0.5))
  assert.ok(run(steps).every((v) => v.level === "ok"))
})

test("ordinary noise around a steady state never raises an alarm", () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.double({ min: -0.2, max: 0.2, noNaN: true }), { minLength: 4, maxLength: 4 }), { minLength: 10, maxLength: 80 }), (noise) => {
      const steps = noise.map(([a = 0, b = 0, c = 0, d = 0]) => step(0.1 * (1 + a), 0.5 * (1 + b), 0.03 * (1 + c), 0.6 * (1 + d)))
      assert.ok(run(steps).every((v) => v.level === "ok"))
    })
  )
})

test("with action rollback, a collapse in a real run goes back to the last good checkpoint and lowers γ", async () => {
  const { mkdtemp, readFile, readdir } = await import("node:fs/promises")
  const { tmpdir } = await import("node:os")
  const { join } = await import("node:path")
  const { Effect } = await import("effect")
  const { loadConfig } = await import("../src/ConfigLoad.js")
  const { runPromise, train } = await import("../src/Train.js")
  const dir = await mkdtemp(join(tmpdir(), "papo-guard-"))
  // A hair-trigger guard (any rise of KL_prcp over the previous step is a collapse) on a tiny PAPO-G run
  // whose γ = 1 drives KL_prcp up: the guard must fire, roll back once, halve γ, and the run must finish.
  const config = await Effect.runPromise(loadConfig({
    overrides: [
      "preset=papo-g", "worker.actor.model=tiny", "trainer.backend=wasm", "trainer.logger=quiet", `trainer.outputDir=${dir}`,
      "trainer.experimentName=guard", "data.trainSize=32", "data.testSize=4", "data.rolloutBatchSize=4", "worker.rollout.n=2",
      "worker.actor.globalBatchSize=4", "worker.actor.optim.lr=1e-2", "trainer.valAvgK=1", "trainer.logSampleFreq=0",
      "trainer.maxSteps=6", "trainer.saveFreq=1", "trainer.saveLimit=10", "algorithm.klPrcpCoef=1",
      "trainer.collapseGuard.action=rollback", "trainer.collapseGuard.maxRollbacks=1", "trainer.collapseGuard.recent=1",
      "trainer.collapseGuard.warmup=0", "trainer.collapseGuard.klRatio=1.0001", "trainer.collapseGuard.klFloor=0",
      "trainer.collapseGuard.minSignals=1", "trainer.collapseGuard.patience=1"
    ]
  }))
  const result = await runPromise(train(config))
  assert.equal(result.step, 6)
  const run = join(dir, "guard")
  const events = (await readFile(join(run, "events.jsonl"), "utf8")).trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>)
  const rollback = events.find((e) => e["event"] === "rollback")
  assert.ok(rollback, `no rollback in ${JSON.stringify(events)}`)
  assert.equal(rollback["klPrcpCoef"], 0.5)
  const collapse = events.find((e) => e["event"] === "collapse")!
  assert.equal(rollback["toStep"], (collapse["step"] as number) - 1)
  assert.match(await readFile(join(run, "config.yaml"), "utf8"), /klPrcpCoef: 0.5/)
  assert.ok((await readdir(run)).includes("metrics-rolled-back-1.jsonl"))
  const steps = (await readFile(join(run, "metrics.jsonl"), "utf8")).trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step)
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6])
})
