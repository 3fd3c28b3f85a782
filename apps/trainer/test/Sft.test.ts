import assert from "node:assert/strict"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { it } from "node:test"
import { Effect } from "effect"
import { Grader } from "@papo/reward"
import { loadConfig } from "../src/ConfigLoad.js"
import * as Dataset from "../src/Dataset.js"
import * as Digits from "../src/Digits.js"
import * as Sft from "../src/Sft.js"
import { runPromise, sft } from "../src/Train.js"

// A real learning check, kept small (~40 s on 2 cores): a d64, 2-layer policy on 28×56 images of two
// MNIST digits learns "Largest digit?" from gold traces, and is graded on held-out digit images.
it("SFT on the digit task clearly beats chance on held-out digits", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-sft-"))
  const config = await Effect.runPromise(loadConfig({
    overrides: [
      "worker.actor.model=small", "worker.actor.dModel=64", "worker.actor.nLayers=2", "worker.actor.dMlp=128",
      "sft.steps=200", "sft.lr=4e-3", "sft.batchSize=24", "sft.warmupSteps=5",
      "data.questionTypes=[larger]", "data.hintRate=0", "data.testSize=100",
      "trainer.valAvgK=1", "trainer.valTemperature=0", "trainer.backend=wasm", "trainer.logger=quiet",
      `trainer.outputDir=${dir}`, "trainer.experimentName=sft"
    ]
  }))
  const result = await runPromise(sft(config))
  const test = Digits.generate({ split: "test", size: 100, numDigits: 2, questionTypes: ["larger"], hintRate: 0, testImageShare: 0.2, seed: config.data.seed })
  const counts = new Map<string, number>()
  for (const e of test) counts.set(e.answer, (counts.get(e.answer) ?? 0) + 1)
  const bestConstant = Math.max(...counts.values()) / test.length // always answering the most frequent digit
  const accuracy = result.eval!.overall.accuracy
  assert.equal(result.eval!.overall.format, 1, "every response is in the <think>…</think>\\boxed{…} format")
  assert.ok(accuracy >= 2 * bestConstant, `held-out accuracy ${accuracy} vs best constant answer ${bestConstant}`)
})

it("answer-only data: SFT targets come from the answers, as sft.target chooses, said once", () => {
  const image = { height: 1, width: 1, channels: 1, data: new Float32Array(1) }
  const withTrace = { id: "a:1", image, problem: "Sum?", answer: "12", trace: "<think>7+5=12</think>\\boxed{12}", subset: "all" }
  const answerOnly = { id: "a:2", image, problem: "Colour?", answer: "red", subset: "all" }
  assert.equal(Dataset.sftTarget(withTrace, "response-or-answer"), withTrace.trace)
  assert.equal(Dataset.sftTarget(answerOnly, "response-or-answer"), "<think></think>\\boxed{red}")
  assert.equal(Dataset.sftTarget(withTrace, "answer"), "<think></think>\\boxed{12}")
  assert.equal(Dataset.sftTarget(answerOnly, "response"), null)
  // The target earns the full format reward of PAPO's rule and grades as correct.
  const target = Dataset.sftTarget(answerOnly, "response-or-answer")!
  const score = Grader.score(target, "red", { mode: "mathruler" })
  assert.deepEqual([score.accuracy, score.format, score.overall], [1, 1, 1])
  const split = { name: "d.jsonl", examples: [withTrace, answerOnly], skipped: [] }
  assert.equal(Effect.runSync(Sft.describeTargets(split, "response-or-answer")),
    'd.jsonl: 1 of 2 training examples have no "response": SFT targets built from their answers as <think></think>\\boxed{answer} (sft.target=response-or-answer)')
  assert.equal(Effect.runSync(Sft.describeTargets({ ...split, examples: [withTrace] }, "response-or-answer")), null)
  const error = Effect.runSync(Effect.flip(Sft.describeTargets(split, "response")))
  assert.deepEqual([error._tag, error.split, error.missing, error.total], ["MissingGoldResponseError", "d.jsonl", 1, 2])
  assert.match(error.message, /sft\.target=response needs a gold response for every training example; 1 of 2 in d\.jsonl/)
})
