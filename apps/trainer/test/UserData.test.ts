import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
import { copyFile, mkdtemp, readFile, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, it } from "node:test"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.js"
import * as Images from "../src/Images.js"
import * as Parquet from "../src/Parquet.js"
import { generate, writeSplit } from "./fixtures/colour-shapes/generate.js"

const fixtures = fileURLToPath(new URL("./fixtures/colour-shapes/", import.meta.url))
const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
/** parquet-wasm's (arrow-rs) reading of the fixtures it wrote (see make-parquet.mjs). */
const reference = JSON.parse(readFileSync(join(fixtures, "parquet-reading.json"), "utf8")) as {
  readonly side: number
  readonly seed: number
  readonly train: ReadonlyArray<{ row: number; problem: string; answer: string; imagePath: string; imageSha256: string; imageBytes: number }>
  readonly test: ReadonlyArray<{ row: number; problem: string; answer: string; imagePath: string; imageSha256: string; imageBytes: number }>
}
const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")
const rowsOf = async (file: string, columns?: ReadonlyArray<string>) => {
  const out: Array<Parquet.Row> = []
  for await (const r of Parquet.readRows(file, columns)) out.push(r)
  return out
}

describe("Parquet splits", () => {
  for (const split of ["train", "test"] as const) {
    it(`${split}.parquet: hyparquet's reading agrees with arrow-rs's`, async () => {
      const rows = await rowsOf(join(fixtures, `${split}.parquet`))
      assert.equal(rows.length, reference[split].length)
      rows.forEach(({ row, record }, i) => {
        const images = record["images"] as ReadonlyArray<{ bytes: Uint8Array; path: string }>
        assert.equal(images.length, 1)
        assert.ok(images[0]!.bytes instanceof Uint8Array, "image bytes stay binary")
        assert.deepEqual(
          { row, problem: record["problem"], answer: record["answer"], imagePath: images[0]!.path, imageSha256: sha256(images[0]!.bytes), imageBytes: images[0]!.bytes.length },
          reference[split][i]
        )
      })
    })
  }

  it("is the colour-shapes dataset the tests generate as JSONL (same images, questions, answers)", () => {
    const records = generate(reference.train.length, reference.side, reference.seed, "train")
    assert.deepEqual(
      records.map((r) => [sha256(r.png), r.problem, r.answer]),
      reference.train.map((r) => [r.imageSha256, r.problem, r.answer])
    )
  })

  it("loads as a split: images from embedded bytes, every image RGB with colour", async () => {
    const shape = { height: 28, width: 28, channels: 3 }
    const split = await Effect.runPromise(Dataset.loadSplit({
      source: join(fixtures, "train.parquet"), split: "train", size: 0, numDigits: 2, questionTypes: ["sum"], hintRate: 0,
      testImageShare: 0.2, seed: 1, onBadRecord: "stop", imageShape: shape, parseAnswer: (a) => a
    }))
    assert.equal(split.examples.length, reference.train.length)
    const records = generate(reference.train.length, reference.side, reference.seed, "train")
    split.examples.forEach((e, i) => {
      assert.equal(e.problem, records[i]!.problem.replace("<image>", ""))
      assert.equal(e.trace, undefined)
      assert.deepEqual(Array.from(e.image.data), Array.from(Images.toImage(Images.decode(records[i]!.png), shape).data))
    })
  })

  it("bad rows name the file and row; the column names are configurable", async () => {
    const file = join(fixtures, "test.parquet")
    const options = {
      source: file, split: "test" as const, size: 0, numDigits: 2, questionTypes: ["sum" as const], hintRate: 0, testImageShare: 0.2,
      seed: 1, imageShape: { height: 8, width: 8, channels: 3 }, parseAnswer: (a: string) => (a === "circle" ? null : a)
    }
    const stop = await Effect.runPromise(Effect.result(Dataset.loadSplit({ ...options, onBadRecord: "stop" })))
    const firstCircle = reference.test.findIndex((r) => r.answer === "circle")
    assert.ok(stop._tag === "Failure")
    assert.equal(stop.failure.message, `${file} row ${firstCircle}: the verifier cannot read the answer "circle"`)
    const renamed = await Effect.runPromise(Effect.result(Dataset.loadSplit({
      ...options, parseAnswer: (a) => a, onBadRecord: "stop", keys: { ...Dataset.easyR1Keys, imageKey: "image", promptKey: "question" }
    })))
    assert.ok(renamed._tag === "Failure")
    assert.match(renamed.failure.message, /test\.parquet row 0: "image" must be an image path, a \{bytes, path\} struct/)
    const notParquet = join(await mkdtemp(join(tmpdir(), "papo-pq-")), "x.parquet")
    await writeFile(notParquet, "not parquet at all")
    const corrupt = await Effect.runPromise(Effect.result(Dataset.loadSplit({ ...options, source: notParquet, onBadRecord: "skip" })))
    assert.ok(corrupt._tag === "Failure")
    assert.match(corrupt.failure.message, /x\.parquet: cannot read the file \(.*parquet/i)
  })
})

// The whole path a user takes, through the command line: an answer-only RGB dataset → papo sft → papo train
// --preset papo-g from that warm start → eval.json. Tiny model and a few steps: a smoke test of the path (the
// accuracy it reaches with a few hundred steps is measured outside the tests; see the README).
describe("answer-only data through the CLI", () => {
  const papo = (...args: ReadonlyArray<string>) => {
    const r = spawnSync(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8" })
    assert.equal(r.status, 0, `papo ${args.join(" ")}\n${r.stdout}\n${r.stderr}`)
    return r.stdout + r.stderr
  }
  const run = async (train: string, test: string, dir: string) => {
    const common = [
      `data.train=${train}`, `data.test=${test}`, "worker.actor.model=tiny", "trainer.threads=1", "trainer.backend=wasm",
      "trainer.logger=lines", "trainer.valAvgK=1", `trainer.outputDir=${dir}`
    ]
    const sftOut = papo("sft", ...common, "trainer.experimentName=warm", "sft.steps=3", "sft.batchSize=8")
    assert.match(sftOut, /16 of 16 training examples have no "response": SFT targets built from their answers/)
    const config = await readFile(join(dir, "warm", "config.yaml"), "utf8")
    // 24 × 24 images are below data.minPixels (784): scaled up to 28 × 28 (multiples of the tiny model's patch 4), RGB kept.
    assert.match(config, /imageHeight: 28\n\s+imageWidth: 28\n\s+imageChannels: 3\n/)
    papo("train", "--preset", "papo-g", ...common, `worker.actor.init=${join(dir, "warm")}`, "trainer.experimentName=rl",
      "trainer.maxSteps=1", "data.rolloutBatchSize=4", "worker.actor.globalBatchSize=4", "worker.rollout.n=2")
    const evaluation = JSON.parse(await readFile(join(dir, "rl", "eval.json"), "utf8")) as { overall: { questions: number } }
    assert.equal(evaluation.overall.questions, 8)
  }

  it("JSONL with image files", async () => {
    const dir = await mkdtemp(join(tmpdir(), "papo-user-"))
    const train = writeSplit(dir, "train", generate(16, reference.side, reference.seed, "train"))
    const test = writeSplit(dir, "test", generate(8, reference.side, reference.seed, "test"))
    await run(train, test, dir)
  })

  it("Parquet with embedded images", async () => {
    const dir = await mkdtemp(join(tmpdir(), "papo-user-pq-"))
    for (const f of ["train.parquet", "test.parquet"]) await copyFile(join(fixtures, f), join(dir, f))
    await run(join(dir, "train.parquet"), join(dir, "test.parquet"), dir)
  })
})
