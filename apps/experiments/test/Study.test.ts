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

test("every shipped study resolves: one warm start per seed, then each arm, all valid configs", async () => {
  const dir = "apps/experiments/studies"
  for (const f of (await readdir(dir)).filter((x) => x.endsWith(".yaml"))) {
    const p = await Effect.runPromise(Study.plan(f.slice(0, -5), await readFile(`${dir}/${f}`, "utf8"), { outputDir: "out" }))
    assert.equal(p.runs.length, p.spec.seeds.length * (1 + p.spec.arms.length), f)
    assert.equal(p.runs[0]!.kind, "sft")
    for (const r of p.runs) {
      assert.equal(r.config.trainer.seed, r.seed)
      assert.equal(r.config.data.seed, r.seed)
      assert.ok(r.config.trainer.experimentName.startsWith(`${f.slice(0, -5)}/seed-${r.seed}/`))
    }
  }
})

test("arms differ only in what their presets and overrides set: same seeds, same data, same steps", async () => {
  const p = await Effect.runPromise(Study.plan("c", await readFile("apps/experiments/studies/compare.yaml", "utf8"), { outputDir: "out" }))
  const [grpo, papo] = p.runs.filter((r) => r.kind === "rl")
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
})
