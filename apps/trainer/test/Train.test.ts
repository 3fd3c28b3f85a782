import assert from "node:assert/strict"
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { before, describe, it } from "node:test"
import { Checkpoint } from "@papo/model"
import { Cause, Effect, Exit, Fiber } from "effect"
import { loadConfig } from "../src/ConfigLoad.js"
import * as Digits from "../src/Digits.js"
import * as Images from "../src/Images.js"
import * as RunFolder from "../src/RunFolder.js"
import { evaluate, runPromise, sft, train, withVerifier } from "../src/Train.js"
import type { Verifier } from "../src/Verifier.js"

// The tiny model (8×8 images, d16) on the digit task: fast, and enough to exercise every stage.
const base = (dir: string, name: string) => [
  "worker.actor.model=tiny",
  "trainer.backend=wasm",
  "trainer.logger=quiet",
  "trainer.threads=1", // the default follows the machine; these runs compare one thread with two explicitly
  `trainer.outputDir=${dir}`,
  `trainer.experimentName=${name}`,
  "data.trainSize=64",
  "data.testSize=8",
  "data.rolloutBatchSize=4",
  "worker.rollout.n=4",
  "worker.actor.globalBatchSize=2",
  "worker.actor.microBatchSizePerDeviceForUpdate=4",
  "worker.actor.optim.lr=1e-3",
  "trainer.valAvgK=2",
  "trainer.logSampleFreq=2",
  "trainer.numSamples=2"
]
const config = (overrides: ReadonlyArray<string>) => Effect.runPromise(loadConfig({ overrides }))
const metricsOf = (dir: string) => Effect.runPromise(RunFolder.readMetrics(dir))
const linesIn = (file: string) => readFile(file, "utf8").then((t) => t.split("\n").length - 1, () => 0)

/**
 * Runs a command in a fiber and interrupts it (`Fiber.interrupt`, what SIGINT and SIGTERM do in the CLI)
 * once `metrics.jsonl` has `steps` lines; returns the fiber's exit and the step of the checkpoint the
 * interruption saved.
 */
const interruptAfter = async <A, E>(command: Effect.Effect<A, E, Verifier>, dir: string, steps: number) => {
  const fiber = Effect.runFork(withVerifier(command))
  while (await linesIn(join(dir, "metrics.jsonl")) < steps) await new Promise((r) => setTimeout(r, 10))
  await Effect.runPromise(Fiber.interrupt(fiber))
  const exit = await Effect.runPromise(Fiber.await(fiber))
  const latest = await Effect.runPromise(RunFolder.latestCheckpoint(dir))
  return { exit, savedStep: latest === null ? null : Number(latest.slice(-6)) }
}
/** The failure of a command that must fail (with the MathRuler verifier). */
const failureOf = async <A, E>(command: Effect.Effect<A, E, Verifier>): Promise<E> => {
  const r = await Effect.runPromise(Effect.result(withVerifier(command)))
  if (r._tag !== "Failure") throw new Error("the command succeeded")
  return r.failure
}
/** A user's JSONL split of 4 answer-only records (digit images as PNG files) whose question is `problem`. */
const userSplit = async (problem: string) => {
  const data = await mkdtemp(join(tmpdir(), "papo-user-"))
  await mkdir(join(data, "img"))
  const records = Digits.generate({ split: "train", size: 4, numDigits: 1, questionTypes: ["sum"], hintRate: 0, testImageShare: 0.2, seed: 3 })
  for (const [i, e] of records.entries()) await writeFile(join(data, "img", `${i}.png`), Images.encodePng([e.image], 1))
  await writeFile(join(data, "train.jsonl"), records.map((e, i) => JSON.stringify({ images: [`img/${i}.png`], problem, answer: e.answer })).join("\n") + "\n")
  return join(data, "train.jsonl")
}
const comparable = (m: Record<string, number>) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("timing_s/") && !k.startsWith("perf/")))

describe("papo train, end to end on the tiny config", () => {
  let dir: string
  let init: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "papo-train-"))
    // A short warm start, so some responses are well formatted and advantages are not all zero.
    const r = await runPromise(sft(await config([...base(dir, "sft"), "sft.steps=40", "sft.batchSize=16", "sft.lr=1e-2", "sft.warmupSteps=2"])))
    init = r.dir
    assert.equal(r.step, 40)
  })

  for (const preset of ["grpo", "dapo", "papo-g", "papo-d"] as const) {
    it(`${preset}: steps, metrics under the reference names, run folder`, async () => {
      const dapoFamily = preset === "dapo" || preset === "papo-d"
      const cfg = await config([`preset=${preset}`, ...base(dir, preset), `worker.actor.init=${init}`, "trainer.maxSteps=2", "trainer.saveFreq=1", "trainer.saveLimit=1", "trainer.valFreq=1",
        ...(dapoFamily ? ["data.miniRolloutBatchSize=2"] : [])])
      const r = await runPromise(train(cfg))
      assert.equal(r.step, 2)
      const lines = await metricsOf(r.dir)
      assert.deepEqual(lines.map((l) => l.step), [1, 2])
      const m = lines[1]!
      for (const k of ["reward/overall", "reward/accuracy", "reward/format", "actor/pg_loss", "actor/pg_clipfrac_higher", "actor/pg_clipfrac_lower", "actor/ppo_kl", "actor/entropy_loss", "actor/grad_norm", "actor/lr", "actor/kl_prcp_loss", "actor/ori_entropy_loss", "actor/aug_entropy_loss", "response_length/mean", "timing_s/gen", "timing_s/update_actor", "frac_reward_zero_std", "verifier/NoAnswer", "perf/tokens_per_s"]) {
        assert.ok(Number.isFinite(m[k]), `${preset}: ${k} = ${m[k]}`)
      }
      const hasRef = preset === "grpo" || preset === "papo-g"
      assert.equal("actor/kl_loss" in m, hasRef, `${preset}: actor/kl_loss iff reference KL`)
      assert.equal("actor/kl_prcp_coef" in m, preset.startsWith("papo"), `${preset}: KL_prcp in the loss iff PAPO`)
      assert.equal(m["actor/lr"], 1e-3)
      assert.equal(m["batch/num_prompts"], 4)
      if (dapoFamily) assert.ok(lines.every((l) => l["dynamic_sampling/num_chunks"]! >= 2), "DAPO generates rounds of 2 prompts until 4 are kept")
      assert.ok(m["reward/format"]! > 0, `${preset}: the warm start gives some formatted responses`)
      // One checkpoint kept; the reference is saved iff there is a reference KL.
      const cks = await readdir(join(r.dir, "checkpoints"))
      assert.deepEqual(cks, ["step-000002"])
      assert.deepEqual((await readdir(join(r.dir, "checkpoints", cks[0]!))).sort(), hasRef ? ["actor", "reference"] : ["actor"])
      const evals = (await readdir(r.dir)).filter((f) => f.startsWith("eval-step-")).sort()
      assert.deepEqual(evals, ["eval-step-000001.json", "eval-step-000002.json"], "evaluated every step and at the end")
      const ev = JSON.parse(await readFile(join(r.dir, "eval.json"), "utf8"))
      assert.equal(ev.step, 2)
      assert.equal(ev.overall.responses, 16)
      assert.ok((await readdir(join(r.dir, "samples", "step-000002"))).includes("0.png"))
      assert.match(await readFile(join(r.dir, "config.yaml"), "utf8"), new RegExp(`preset: ${preset}`))
    })
  }

  it("papo eval: a run folder's newest checkpoint, avg@k per subset, eval.json in the config's run folder", async () => {
    const cfg = await config([...base(dir, "evalout"), "trainer.valAvgK=3"])
    const { result, checkpoint } = await runPromise(evaluate(cfg, { checkpoint: join(dir, "grpo") }))
    assert.equal(checkpoint, join(dir, "grpo", "checkpoints", "step-000002", "actor"))
    assert.equal(result.step, 2)
    assert.equal(result.k, 3)
    assert.equal(result.overall.responses, 24)
    const outcomes = Object.values(result.overall.outcomes).reduce((a, b) => a + b, 0)
    assert.equal(outcomes, 24)
    const subsetResponses = Object.values(result.subsets).reduce((a, s) => a + s.responses, 0)
    assert.equal(subsetResponses, 24)
    const written = await Effect.runPromise(RunFolder.readEval(join(dir, "evalout", "eval.json")))
    assert.equal(written.checkpoint, checkpoint)
    assert.equal(written.overall.responses, 24)
  })

  for (const threads of [1, 2]) {
    it(`Ctrl-C then --resume gives the metrics of an uninterrupted run (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      const common = ["preset=papo-g", `worker.actor.init=${init}`, "trainer.maxSteps=4", "trainer.saveFreq=0", `trainer.threads=${threads}`]
      const full = await runPromise(train(await config([...base(dir, `full${threads}`), ...common])))
      const cut = await config([...base(dir, `cut${threads}`), ...common])
      const first = await interruptAfter(train(cut), join(dir, `cut${threads}`), 2)
      assert.ok(Exit.isFailure(first.exit) && Cause.hasInterruptsOnly(first.exit.cause), "the run ends interrupted")
      assert.ok(first.savedStep !== null && first.savedStep >= 2 && first.savedStep < 4, `interrupted mid-run: checkpoint at step ${first.savedStep}`)
      const resumed = await runPromise(train(cut, { resume: true }))
      assert.equal(resumed.step, 4)
      const a = (await metricsOf(full.dir)).map(comparable)
      const b = (await metricsOf(resumed.dir)).map(comparable)
      assert.equal(b.length, 4)
      assert.deepEqual(b, a)
      // The updates did something: the weights moved from the warm start (the loss on a fixed batch going down is
      // checked per step in Step.test.ts, where the step's own batch is at hand).
      const start = await Checkpoint.load(await Effect.runPromise(RunFolder.resolveModelCheckpoint(init)))
      const end = await Checkpoint.load(await Effect.runPromise(RunFolder.resolveModelCheckpoint(full.dir)))
      assert.ok(Object.entries(start.weights).some(([k, w]) => w.some((x, i) => x !== end.weights[k]![i])), "the parameters moved")
      assert.deepEqual(resumed.eval!.overall, full.eval!.overall)
    })
  }

  it("non-finite losses skip updates, then stop with a checkpoint from before the fault", async () => {
    const cfg = await config([...base(dir, "nan"), "preset=grpo", `worker.actor.init=${init}`, "trainer.maxSteps=5", "trainer.maxConsecutiveNonFinite=2",
      "worker.actor.useOriEntropyLoss=true", "worker.actor.oriEntropyLossCoef=1e39"])
    const r = await Effect.runPromise(Effect.result(train(cfg).pipe(Effect.provide((await import("../src/Verifier.js")).Verifier.mathRuler))))
    assert.ok(r._tag === "Failure" && r.failure._tag === "NonFiniteStreakError", String(r))
    const { step, streak, max, savedTo } = r.failure
    assert.deepEqual({ step, streak, max, savedTo }, { step: 2, streak: 2, max: 2, savedTo: join(dir, "nan", "checkpoints", "step-000002-before-fault") })
    assert.match(r.failure.message, /2 steps in a row had only non-finite losses or gradients.*before the fault are saved in .*step-000002-before-fault/)
    const lines = await metricsOf(join(dir, "nan"))
    assert.deepEqual(lines.map((l) => l["actor/non_finite_updates"]), [2, 2])
    const saved = await Checkpoint.load(join(dir, "nan", "checkpoints", "step-000002-before-fault", "actor"))
    const initial = await Checkpoint.load(join(await Effect.runPromise(RunFolder.resolveModelCheckpoint(init))))
    for (const [k, w] of Object.entries(initial.weights)) assert.deepEqual(saved.weights[k], w, `${k} unchanged`)
  })

  it("--resume without a checkpoint is a NothingToResumeError naming the run folder", async () => {
    const cfg = await config([...base(dir, "empty"), "trainer.maxSteps=1"])
    const failure = await failureOf(train(cfg, { resume: true }))
    assert.ok(failure._tag === "NothingToResumeError", failure.message)
    assert.equal(failure.dir, join(dir, "empty"))
    assert.match(failure.message, /no checkpoint to resume from in .*empty\/checkpoints/)
  })

  it("--resume of train from an SFT run's checkpoint is a CheckpointKindError", async () => {
    await runPromise(sft(await config([...base(dir, "kind"), "sft.steps=1", "sft.batchSize=4"])))
    const failure = await failureOf(train(await config([...base(dir, "kind"), "trainer.maxSteps=2"]), { resume: true, allowConfigChange: true }))
    assert.ok(failure._tag === "CheckpointKindError", failure.message)
    assert.deepEqual([failure.path, failure.found, failure.expected], [join(dir, "kind", "checkpoints", "step-000001"), "sft", "train"])
  })

  it("--resume with a reference KL from a checkpoint without reference weights is a MissingReferenceError", async () => {
    const common = [...base(dir, "noref"), "preset=grpo", `worker.actor.init=${init}`, "trainer.maxSteps=1"]
    await runPromise(train(await config([...common, "algorithm.useKlLoss=false"])))
    const failure = await failureOf(train(await config([...common, "trainer.maxSteps=2", "algorithm.useKlLoss=true"]), { resume: true, allowConfigChange: true }))
    assert.ok(failure._tag === "MissingReferenceError", failure.message)
    assert.equal(failure.path, join(dir, "noref", "checkpoints", "step-000001"))
  })

  it("DAPO's dynamic sampling giving up reaches the caller as a DynamicSamplingError with its tries", async () => {
    // Rounds of 2 prompts for a batch of 4: one round (all it may try) cannot fill it.
    const cfg = await config([...base(dir, "giveup"), "preset=dapo", "trainer.maxSteps=1", "algorithm.maxTryMakeBatch=1", "data.miniRolloutBatchSize=2"])
    const failure = await failureOf(train(cfg))
    assert.ok(failure._tag === "DynamicSamplingError", failure.message)
    assert.deepEqual([failure.numTries, failure.maxTryMakeBatch], [1, 1])
  })

  it("a checkpoint whose tokenizer lacks the data's characters is a CheckpointIncompatibleError; sft.target=response without gold responses a MissingGoldResponseError", async () => {
    const file = await userSplit("<image>Chiffre (é) ?")
    const cfg = await config([...base(dir, "incompatible"), `data.train=${file}`, `data.test=${file}`, "sft.target=response"])
    const incompatible = await failureOf(evaluate(cfg, { checkpoint: init }))
    assert.ok(incompatible._tag === "CheckpointIncompatibleError", incompatible.message)
    const actor = join(init, "checkpoints", "step-000040", "actor")
    const known = (await Checkpoint.load(actor)).tokenizer!.tokens
    assert.deepEqual([incompatible.path, incompatible.missingChars], [actor, [...new Set("Chiffre (é) ?")].filter((c) => !known.includes(c)).join("")])
    assert.ok(incompatible.missingChars.includes("é"))
    const missing = await failureOf(sft(cfg))
    assert.ok(missing._tag === "MissingGoldResponseError", missing.message)
    assert.deepEqual([missing.split, missing.missing, missing.total], [file, 4, 4])
  })

  it("trains on a user's JSONL split, the tokenizer extended to its characters, grading in a worker pool", async () => {
    const data = await mkdtemp(join(tmpdir(), "papo-user-"))
    const lines = Digits.generate({ split: "train", size: 8, numDigits: 2, questionTypes: ["sum"], hintRate: 0, testImageShare: 0.2, seed: 3 })
      .map((e, i) => {
        return { file: `img/${i}.png`, png: Images.encodePng([e.image], 1), record: { images: [`img/${i}.png`], problem: `<image>Somme des chiffres (é) ?`, answer: e.answer } }
      })
    await (await import("node:fs/promises")).mkdir(join(data, "img"))
    for (const l of lines) await writeFile(join(data, l.file), l.png)
    await writeFile(join(data, "train.jsonl"), lines.map((l) => JSON.stringify(l.record)).join("\n") + "\n")
    const cfg = await config([...base(dir, "user"), "preset=papo-g", `data.train=${join(data, "train.jsonl")}`, `data.test=${join(data, "train.jsonl")}`,
      "trainer.maxSteps=1", "worker.reward.workers=1"])
    const r = await runPromise(train(cfg), cfg)
    assert.equal(r.step, 1)
    assert.equal(r.eval!.overall.questions, 8)
    assert.deepEqual(Object.keys(r.eval!.subsets), ["all"])
    const saved = await Checkpoint.load(join(r.dir, "checkpoints", "step-000001", "actor"))
    assert.ok(saved.tokenizer!.tokens.includes("é"))
  })

  it("sft: two threads follow the one-thread loss curve, and Ctrl-C + --resume equals an uninterrupted run", async () => {
    const common = ["sft.steps=6", "sft.batchSize=8", "sft.lr=1e-2", "sft.warmupSteps=1", "trainer.saveFreq=0"]
    const one = await runPromise(sft(await config([...base(dir, "sft1"), ...common])))
    const two = await runPromise(sft(await config([...base(dir, "sft2"), ...common, "trainer.threads=2"])))
    const a = await metricsOf(one.dir), b = await metricsOf(two.dir)
    assert.equal(b.length, 6)
    a.forEach((m, i) => assert.ok(Math.abs(m["sft/loss"]! - b[i]!["sft/loss"]!) < 1e-3, `step ${i + 1}: ${m["sft/loss"]} vs ${b[i]!["sft/loss"]}`))
    assert.ok(a[5]!["sft/loss"]! < a[0]!["sft/loss"]!, "the loss goes down")
    const cutConfig = await config([...base(dir, "sftcut"), ...common])
    const first = await interruptAfter(sft(cutConfig), join(dir, "sftcut"), 3)
    assert.ok(Exit.isFailure(first.exit) && Cause.hasInterruptsOnly(first.exit.cause), "the run ends interrupted")
    assert.ok(first.savedStep !== null && first.savedStep >= 3 && first.savedStep < 6, `interrupted mid-run: checkpoint at step ${first.savedStep}`)
    const resumed = await runPromise(sft(cutConfig, { resume: true }))
    assert.deepEqual((await metricsOf(resumed.dir)).map(comparable), a.map(comparable))
  })

  it("a fresh run in a used folder is refused, naming what is there; --overwrite replaces the earlier run", async () => {
    const common = [...base(dir, "reuse"), "sft.batchSize=4", "trainer.saveFreq=1", "trainer.saveLimit=5"]
    await runPromise(sft(await config([...common, "sft.steps=3"])))
    const refused = await Effect.runPromise(Effect.flip(withVerifier(sft(await config([...common, "sft.steps=1"])))))
    assert.equal(refused._tag, "RunFolderNotEmptyError")
    assert.ok(refused._tag === "RunFolderNotEmptyError" && refused.entries.includes("checkpoints") && refused.entries.includes("metrics.jsonl"), refused.message)
    assert.equal((await readdir(join(dir, "reuse", "checkpoints"))).length, 3, "nothing was removed")
    const again = await runPromise(sft(await config([...common, "sft.steps=1"]), { overwrite: true }))
    assert.deepEqual(await readdir(join(again.dir, "checkpoints")), ["step-000001"])
    assert.deepEqual((await metricsOf(again.dir)).map((m) => m.step), [1])
    assert.deepEqual((await readdir(again.dir)).filter((f) => f.startsWith("eval-step-")), ["eval-step-000001.json"])
  })

  it("--resume with a changed algorithm key is refused, listing it, and writes nothing; --allow-config-change goes on", async () => {
    const common = [...base(dir, "changed"), "sft.batchSize=4", "trainer.saveFreq=1"]
    await runPromise(sft(await config([...common, "sft.steps=1"])))
    const saved = await readFile(join(dir, "changed", "config.yaml"), "utf8")
    const changed = await config([...common, "sft.steps=2", "sft.lr=0.5"])
    const refused = await Effect.runPromise(Effect.flip(withVerifier(sft(changed, { resume: true }))))
    assert.ok(refused._tag === "ConfigChangedError", refused.message)
    assert.deepEqual(refused._tag === "ConfigChangedError" && refused.keys.map((k) => k.key), ["sft.lr"], "sft.steps may change")
    assert.equal(await readFile(join(dir, "changed", "config.yaml"), "utf8"), saved)
    assert.deepEqual((await metricsOf(join(dir, "changed"))).map((m) => m.step), [1])
    const forced = await runPromise(sft(changed, { resume: true, allowConfigChange: true }))
    assert.equal(forced.step, 2)
    assert.match(await readFile(join(dir, "changed", "config.yaml"), "utf8"), /lr: 0\.5/)
  })

  it("the shapes task: SFT then PAPO-D end to end", async () => {
    const common = [...base(dir, "shapes-sft"), "data.train=shapes", "data.test=shapes", "sft.steps=2", "sft.batchSize=4"]
    const warm = await runPromise(sft(await config(common)))
    const r = await runPromise(train(await config([...base(dir, "shapes-rl"), "data.train=shapes", "data.test=shapes", "preset=papo-d", `worker.actor.init=${warm.dir}`, "trainer.maxSteps=1"])))
    assert.equal(r.step, 1)
    assert.equal(r.eval!.split, "shapes")
    assert.deepEqual(Object.keys(r.eval!.subsets).sort(), ["high", "low"])
  })
})
