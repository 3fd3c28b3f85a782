import assert from "node:assert/strict"
import { mkdtemp } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { it } from "node:test"
import { Effect } from "effect"
import { loadConfig } from "../src/Config.js"
import * as Digits from "../src/Digits.js"
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
