import assert from "node:assert/strict"
import { mkdtemp, writeFile } from "node:fs/promises"
import { availableParallelism, tmpdir } from "node:os"
import { join } from "node:path"
import { describe, it } from "node:test"
import { backendNames } from "@papo/backend"
import { Kl, PapoLoss } from "@papo/loss"
import { Grader } from "@papo/reward"
import { Effect } from "effect"
import * as Config from "../src/Config.js"
import * as ConfigLoad from "../src/ConfigLoad.js"

const load = (opts: Parameters<typeof ConfigLoad.loadConfig>[0]) => Effect.runPromise(Effect.result(ConfigLoad.loadConfig(opts)))
const problems = async (opts: Parameters<typeof ConfigLoad.loadConfig>[0]) => {
  const r = await load(opts)
  assert.equal(r._tag, "Failure", "expected the config to be rejected")
  return r._tag === "Failure" ? r.failure.problems : []
}

describe("Config", () => {
  it("decoding nothing gives the defaults, the GRPO loss of the reference", async () => {
    const r = await load({})
    assert.equal(r._tag, "Success")
    if (r._tag !== "Success") return
    assert.equal(r.success.preset, "grpo")
    assert.equal(r.success.worker.rollout.n, 5)
    assert.deepEqual(Config.lossConfig(r.success, 1), { ...PapoLoss.presets.grpo, gradientAccumulation: 1 })
  })

  it("each Table 1 preset resolves to its @papo/loss preset", async () => {
    for (const [name, loss] of [["grpo", "grpo"], ["dapo", "dapo"], ["papo-g", "papo-g"], ["papo-d", "papo-d"], ["papo-g-no-kl-ref", "papo-g-no-kl-ref"], ["papo-g-double-entropy", "papo-g-7b"]] as const) {
      const r = await load({ overrides: [`preset=${name}`] })
      assert.equal(r._tag, "Success", name)
      if (r._tag !== "Success") continue
      assert.deepEqual(Config.lossConfig(r.success, 2), { ...PapoLoss.presets[loss], gradientAccumulation: 2 }, name)
      assert.equal(r.success.algorithm.onlineFiltering, name === "dapo" || name === "papo-d", name)
    }
  })

  it("ablation presets change one knob of PAPO-G", async () => {
    const r = await load({ overrides: ["preset=papo-g-gamma-0.04"] })
    assert.ok(r._tag === "Success" && r.success.algorithm.klPrcpCoef === 0.04 && r.success.algorithm.useKlPrcp)
    const m = await load({ overrides: ["preset=papo-g-mask-1.0"] })
    assert.ok(m._tag === "Success" && m.success.algorithm.maskRatio === 1 && m.success.algorithm.klPrcpCoef === 0.02)
  })

  it("YAML file < command line, and both over the preset", async () => {
    const dir = await mkdtemp(join(tmpdir(), "papo-config-"))
    const file = join(dir, "c.yaml")
    await writeFile(file, "preset: papo-g\nalgorithm:\n  klPrcpCoef: 0.01\nworker:\n  rollout:\n    n: 4\n")
    const r = await load({ file, overrides: ["worker.rollout.n=6", "worker.actor.optim.betas=[0.9, 0.99]"] })
    assert.equal(r._tag, "Success")
    if (r._tag !== "Success") return
    assert.equal(r.success.algorithm.klPrcpCoef, 0.01)
    assert.equal(r.success.algorithm.useKlPrcp, true)
    assert.equal(r.success.worker.rollout.n, 6)
    assert.deepEqual(r.success.worker.actor.optim.betas, [0.9, 0.99])
  })

  it("the resolved YAML loads back to the same config", async () => {
    const r = await load({ overrides: ["preset=papo-d", "trainer.maxSteps=7"] })
    assert.equal(r._tag, "Success")
    if (r._tag !== "Success") return
    const dir = await mkdtemp(join(tmpdir(), "papo-config-"))
    await writeFile(join(dir, "config.yaml"), Config.toYaml(r.success))
    const again = await load({ file: join(dir, "config.yaml") })
    assert.ok(again._tag === "Success")
    assert.deepEqual(again.success, r.success)
  })

  it("an unknown key is named, with the valid keys and a near match", async () => {
    const [p] = await problems({ overrides: ["algorithm.klPrcpCof=0.02"] })
    assert.match(p!, /unknown key "algorithm\.klPrcpCof"/)
    assert.match(p!, /did you mean "algorithm\.klPrcpCoef"/)
    assert.match(p!, /valid keys in algorithm: .*maskRatio/)
    const [top] = await problems({ overrides: ["trainr.maxSteps=3"] })
    assert.match(top!, /unknown key "trainr".*did you mean "trainer"/)
  })

  it("one name per setting: lossAggMode and EasyR1's snake_case keys point to the config's name", async () => {
    const [agg] = await problems({ overrides: ["worker.actor.lossAggMode=seq"] })
    assert.match(agg!, /unknown key "worker\.actor\.lossAggMode" \(did you mean "worker\.actor\.lossAvgMode"\?\)/)
    const [snake] = await problems({ overrides: ["worker.actor.clip_ratio_high=0.28"] })
    assert.match(snake!, /did you mean "worker\.actor\.clipRatioHigh"/)
    const r = await load({ overrides: ["worker.actor.lossAvgMode=seq"] })
    assert.ok(r._tag === "Success" && Config.lossConfig(r.success, 1).lossAggMode === "seq")
  })

  it("the allowed values are the packages' own lists", async () => {
    const expected = (list: ReadonlyArray<string>) => new RegExp(`Expected ${list.map((v) => `"${v}"`).join(" \\| ")}, got "x"`)
    const ps = await problems({ overrides: ["algorithm.klPenalty=x", "worker.reward.mode=x", "trainer.backend=x"] })
    assert.ok(ps.some((p) => expected(Kl.perTokenKlPenalties).test(p)), ps.join("\n"))
    assert.ok(ps.some((p) => expected(Grader.modes).test(p)), ps.join("\n"))
    assert.ok(ps.some((p) => expected(backendNames).test(p)), ps.join("\n"))
  })

  it("bad values are all reported, each with its key, the expectation and the value", async () => {
    const ps = await problems({ overrides: ["algorithm.klPrcpCoef=-1", "worker.actor.lossAvgMode=tok", "data.train=x.csv", "worker.rollout.n=1"] })
    assert.equal(ps.length, 4)
    assert.ok(ps.some((p) => /"algorithm\.klPrcpCoef": .*greater than or equal to 0, got -1/.test(p)))
    assert.ok(ps.some((p) => /"worker\.actor\.lossAvgMode": Expected "token" \| "seq", got "tok"/.test(p)))
    assert.ok(ps.some((p) => /"data\.train": .*or a path ending in \.jsonl or \.parquet, got "x\.csv"/.test(p)))
    assert.ok(ps.some((p) => /"worker\.rollout\.n": .*greater than or equal to 2, got 1/.test(p)))
  })

  it("an unknown preset lists the presets; a malformed override and bad YAML are reported", async () => {
    const [p] = await problems({ overrides: ["preset=papo"] })
    assert.match(p!, /"papo" is not a preset; valid: grpo, dapo, papo-g, papo-d/)
    const [o] = await problems({ overrides: ["algorithm.klPrcpCoef"] })
    assert.match(o!, /not of the form key\.path=value/)
    const dir = await mkdtemp(join(tmpdir(), "papo-config-"))
    await writeFile(join(dir, "bad.yaml"), "algorithm: [1, 2\n")
    const [y] = await problems({ file: join(dir, "bad.yaml") })
    assert.match(y!, /not valid YAML/)
  })

  it("trainer.threads follows the machine unless set, whatever the algorithm", async () => {
    const threads = async (overrides: ReadonlyArray<string>) => (await Effect.runPromise(ConfigLoad.loadConfig({ overrides }))).trainer.threads
    assert.equal(Config.defaultThreads, Math.min(2, availableParallelism()))
    assert.equal(await threads([]), Config.defaultThreads)
    assert.equal(await threads(["trainer.threads=1"]), 1)
    assert.equal(await threads(["algorithm.klPrcpSchedule=annealing"]), Config.defaultThreads)
    assert.equal(await threads(["worker.actor.recomputeMaskedLogProbs=true"]), Config.defaultThreads)
  })

  it("user-data keys: Parquet sources, record fields, image size, SFT target; bad values named", async () => {
    const c = await Effect.runPromise(ConfigLoad.loadConfig({
      overrides: ["data.train=my/train.parquet", "data.promptKey=question", "data.imageChannels=3", "data.maxPixels=9216", "sft.target=answer"]
    }))
    assert.deepEqual([c.data.train, c.data.promptKey, c.data.imageKey, c.data.imageChannels, c.data.maxPixels, c.sft.target],
      ["my/train.parquet", "question", "images", 3, 9216, "answer"])
    assert.deepEqual([c.data.maxPromptLength, c.data.maxResponseLength, c.data.imageHeight, c.worker.actor.patchSize], [null, null, null, null])
    const ps = await problems({ overrides: ["data.imageChannels=2", "sft.target=gold"] })
    assert.ok(ps.some((p) => /"data\.imageChannels": Expected 1 \| 3, got 2/.test(p)), ps.join("\n"))
    assert.ok(ps.some((p) => /"sft\.target": Expected "response" \| "answer" \| "response-or-answer", got "gold"/.test(p)), ps.join("\n"))
  })
})
