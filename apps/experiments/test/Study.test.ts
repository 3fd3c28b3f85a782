import assert from "node:assert/strict"
import { readdir, readFile } from "node:fs/promises"
import { test } from "node:test"
import { Effect, Exit } from "effect"
import * as Study from "../src/Study.js"

const plan = (text: string) => Effect.runPromiseExit(Study.plan("t", text, { outputDir: "out" }))
const failure = async (text: string) => {
  const exit = await plan(text)
  assert.ok(Exit.isFailure(exit), "expected the study to be refused")
  return String(exit.cause)
}

test("every shipped study resolves: a warm start per seed (or one shared), then each arm, all valid configs", async () => {
  const dir = "apps/experiments/studies"
  for (const f of (await readdir(dir)).filter((x) => x.endsWith(".yaml"))) {
    const name = f.slice(0, -5)
    const p = await Effect.runPromise(Study.plan(name, await readFile(`${dir}/${f}`, "utf8"), { outputDir: "out" }))
    const shared = p.spec.sharedWarmStart !== undefined
    assert.equal(p.runs.length, (shared ? 1 : p.spec.seeds.length) + p.spec.seeds.length * p.spec.arms.length, f)
    assert.equal(p.runs[0]!.kind, "sft")
    assert.equal(p.runs.filter((r) => r.kind === "sft").length, shared ? 1 : p.spec.seeds.length, f)
    for (const r of p.runs) {
      assert.equal(r.config.trainer.seed, r.seed)
      assert.equal(r.config.data.seed, r.seed)
      const folder = shared && r.kind === "sft" ? `${name}/warm-start` : `${name}/seed-${r.seed}/`
      assert.ok(r.config.trainer.experimentName.startsWith(folder), `${f}: ${r.config.trainer.experimentName}`)
    }
  }
})

test("compare: one shared warm start on cue-heavy data, six or more seeds of RL on data with conflicts", async () => {
  const p = await Effect.runPromise(Study.plan("compare", await readFile("apps/experiments/studies/compare.yaml", "utf8"), { outputDir: "out" }))
  const [sft, ...rl] = p.runs
  assert.equal(sft!.kind, "sft")
  assert.ok(rl.every((r) => r.kind === "rl"))
  assert.ok(p.spec.seeds.length >= 6)
  assert.equal(sft!.config.data.train, "cued")
  // The warm start learns the prior from a teacher that leans on it: conflicting items exist, and their traces mostly follow the cue.
  assert.ok(sft!.config.data.cued.agree < 1 && sft!.config.data.cued.agree >= 0.5, "the warm-start data has conflicts, the cue mostly right")
  assert.ok(sft!.config.data.cued.followRate >= 0.6, "the teacher follows the cue on most conflicts")
  for (const r of rl) assert.equal(r.config.data.cued.followRate, 0, "RL is rewarded against the image only")
  for (const r of rl) assert.equal(r.config.data.cued.agree, 0.5, "RL data has conflicts")
  assert.deepEqual(p.spec.checks, { canSee: 0.8, followsPrior: 0.6, followsPriorMax: 0.9 })
  assert.deepEqual(p.spec.primary, { method: "PAPO-G", subset: "conflict" })
})

test("arms differ only in what their presets and overrides set: same seeds, same data, same steps", async () => {
  const p = await Effect.runPromise(Study.plan("c", await readFile("apps/experiments/studies/compare.yaml", "utf8"), { outputDir: "out" }))
  const [grpo, papo] = p.runs.filter((r) => r.kind === "rl" && r.seed === p.spec.seeds[0])
  assert.deepEqual(grpo!.config.data, papo!.config.data)
  assert.equal(grpo!.config.trainer.maxSteps, papo!.config.trainer.maxSteps)
  assert.equal(grpo!.config.algorithm.useKlPrcp, false)
  assert.equal(papo!.config.algorithm.useKlPrcp, true)
  assert.equal(papo!.config.algorithm.klPrcpCoef, 0.02)
})

test("a bad trainer key stops the study before any work, naming the run and the key", async () => {
  const msg = await failure("description: x\nseeds: [1]\narms:\n  - { label: A, preset: grpo, overrides: { algorithm: { klPrcpCoeff: 1 } } }\n")
  assert.match(msg, /arm "A", seed 1/)
  assert.match(msg, /klPrcpCoeff/)
})

test("an unknown preset, a duplicate label and a missing baseline are refused", async () => {
  assert.match(await failure("description: x\nseeds: [1]\narms: [{ label: A, preset: ppo }]\n"), /preset/)
  assert.match(await failure("description: x\nseeds: [1]\narms: [{ label: A, preset: grpo }, { label: A, preset: papo-g }]\n"), /arm label "A" is used twice/)
  assert.match(await failure("description: x\nseeds: [1]\nbaseline: B\narms: [{ label: A, preset: grpo }]\n"), /baseline "B" is not an arm/)
  assert.match(await failure("description: x\nseeds: [1]\nprimary: { method: B, subset: conflict }\narms: [{ label: A, preset: grpo }]\n"), /primary.method "B" is not an arm/)
})
