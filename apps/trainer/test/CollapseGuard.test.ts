import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { defaultCollapseGuardConfig, initialState, observe, type Verdict } from "../src/CollapseGuard.js"

const step = (kl: number, reward: number, clip: number, ent: number, aug: number) => ({
  "actor/kl_prcp_loss": -kl,
  "reward/accuracy": reward,
  "actor/pg_clipfrac_higher": clip,
  "actor/ori_entropy_loss": ent,
  "actor/aug_entropy_loss": aug
})

const run = (steps: ReadonlyArray<Record<string, number>>): Array<Verdict> => {
  let s = initialState
  return steps.map((m) => {
    const r = observe(s, m)
    s = r.state
    return r.verdict
  })
}

test("the paper's collapse (KL up, reward down, clipping and both entropies up) is a collapse after `patience` steps", () => {
  const healthy = Array.from({ length: 12 }, (_, i) => step(0.05 + 0.002 * (i % 3), 0.6, 0.02, 0.5, 0.7))
  const collapsing = Array.from({ length: 4 }, (_, i) => step(0.4 * (i + 1), 0.2, 0.2, 0.9, 1.2))
  const verdicts = run([...healthy, ...collapsing])
  assert.ok(verdicts.slice(0, 12).every((v) => v.level === "ok"))
  assert.deepEqual(verdicts.slice(12).map((v) => v.level), ["warning", "warning", "collapse", "collapse"])
  assert.deepEqual(verdicts[12]!.signals.map((s) => s.name), ["kl_prcp", "reward", "clipfrac", "entropy"])
})

test("a rising KL alone, with rewards holding, is not a collapse: PAPO is meant to raise KL_prcp", () => {
  const steps = Array.from({ length: 30 }, (_, i) => step(0.05 * 1.15 ** i, 0.6, 0.02, 0.5, 0.7))
  assert.ok(run(steps).every((v) => v.level === "ok"))
})

test("ordinary noise around a steady state never raises an alarm", () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.double({ min: -0.2, max: 0.2, noNaN: true }), { minLength: 5, maxLength: 5 }), { minLength: 10, maxLength: 60 }), (noise) => {
      const steps = noise.map(([a = 0, b = 0, c = 0, d = 0, e = 0]) => step(0.1 * (1 + a), 0.5 * (1 + b), 0.03 * (1 + c), 0.6 * (1 + d), 0.8 * (1 + e)))
      assert.ok(run(steps).every((v) => v.level === "ok"))
    })
  )
})

test("runs without the perception loss (GRPO) are never judged", () => {
  const steps = Array.from({ length: 20 }, (_, i) => ({ "reward/accuracy": i < 10 ? 0.6 : 0.1, "actor/pg_clipfrac_higher": 0.3 }))
  assert.ok(run(steps).every((v) => v.level === "ok"))
  assert.equal(defaultCollapseGuardConfig.minSignals, 2)
})
