import assert from "node:assert/strict"
import { existsSync } from "node:fs"
import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, it } from "node:test"
import { Effect } from "effect"
import * as fc from "fast-check"
import * as jpeg from "jpeg-js"
import { loadConfig } from "../src/ConfigLoad.js"
import * as Dataset from "../src/Dataset.js"
import * as Digits from "../src/Digits.js"
import { classify, type Example } from "../src/Example.js"
import * as Images from "../src/Images.js"
import * as Shapes from "../src/Shapes.js"
import type { RunError } from "../src/Train.js"
import type { Verifier as VerifierService } from "../src/Verifier.js"

const digitOptions = (split: "train" | "test", size = 300): Digits.DigitsOptions => ({
  split,
  size,
  numDigits: 2,
  questionTypes: ["sum", "difference", "larger", "product", "count"],
  hintRate: 0.3,
  testImageShare: 0.2,
  seed: 7
})

const boxed = (trace: string) => /\\boxed\{([^}]*)\}/.exec(trace)![1]!
const digitsOf = (e: Example) => e.sources!.map((s) => Number(s.split("/")[1]))

describe("Digits task", () => {
  const train = Digits.generate(digitOptions("train"))
  const test = Digits.generate(digitOptions("test", 200))

  it("is deterministic in its seed", () => {
    const again = Digits.generate(digitOptions("train", 20))
    assert.deepEqual(again.map((e) => [e.problem, e.answer, e.sources]), train.slice(0, 20).map((e) => [e.problem, e.answer, e.sources]))
  })

  it("answers are right for the digits shown, and the trace boxes the answer", () => {
    for (const e of [...train, ...test]) {
      const ds = digitsOf(e)
      const q = e.problem.replace(/^\w+ digit is \d\. /, "")
      const expected = q === "Sum of the digits?" ? ds[0]! + ds[1]!
        : q === "Product of the digits?" ? ds[0]! * ds[1]!
        : q === "Largest digit?" ? Math.max(...ds)
        : q === "Largest minus smallest digit?" ? Math.abs(ds[0]! - ds[1]!)
        : ds.filter((d) => d === Number(/^How many (\d)s\?$/.exec(q)![1])).length
      assert.equal(e.answer, String(expected), e.problem)
      assert.equal(boxed(e.trace!), e.answer)
      assert.deepEqual(e.perceived!.values, ds)
    }
  })

  it("the worked example of the paper's format", () => {
    assert.deepEqual(Digits.question("sum", [7, 5], 0), {
      problem: "Sum of the digits?",
      answer: "12",
      trace: "<think>7+5=12</think>\\boxed{12}"
    })
  })

  it("train and test use disjoint MNIST images, and the image shows those digits' pixels", () => {
    const trainImgs = new Set(train.flatMap((e) => e.sources!))
    const testImgs = new Set(test.flatMap((e) => e.sources!))
    for (const s of testImgs) assert.ok(!trainImgs.has(s), `${s} is in both splits`)
    const e = test[0]!
    assert.deepEqual([e.image.height, e.image.width, e.image.channels], [28, 56, 1])
    const [, d, i] = e.sources![1]!.split("/")
    const px = Digits.digitPixels(Number(d), Number(i))
    assert.deepEqual(Array.from(e.image.data.subarray(10 * 56 + 28, 10 * 56 + 56)), Array.from(px.subarray(10 * 28, 11 * 28)))
  })

  it("hinted questions state a true digit and form the low-vision-dependency subset", () => {
    const low = train.filter((e) => e.subset === "low")
    assert.ok(low.length > 50 && low.length < 130, `${low.length} hinted of 300 at hintRate 0.3`)
    for (const e of low) {
      const [, pos, d] = /^(First|Second) digit is (\d)\./.exec(e.problem)!
      assert.equal(digitsOf(e)[pos === "First" ? 0 : 1], Number(d))
    }
    assert.ok(train.filter((e) => e.subset === "high").every((e) => !/digit is/.test(e.problem)))
  })

  it("wrong answers split into perception and reasoning errors", () => {
    const e = train.find((x) => x.problem === "Sum of the digits?")!
    const [a, b] = digitsOf(e)
    assert.equal(classify(e, e.trace!, true), "correct")
    assert.equal(classify(e, `<think>${a}+${b}=${a! + b! + 1}</think>\\boxed{${a! + b! + 1}}`, false), "reasoning")
    assert.equal(classify(e, `<think>${(a! + 1) % 10}+${b}=3</think>\\boxed{3}`, false), "perception")
    assert.equal(classify(e, "\\boxed{3}", false), "format")
  })
})

describe("Shapes task", () => {
  const ex = Shapes.generate({ split: "train", size: 200, height: 28, width: 56, hintRate: 0.3, seed: 3 })
  it("answers follow from the stated counts, and the counts are the shapes drawn", () => {
    for (const e of ex) {
      const [o, s, t] = e.perceived!.values as [number, number, number]
      const counts: Record<string, number> = { circles: o, squares: s, triangles: t }
      const q = e.problem.replace(/^\d+ \w+\. /, "")
      const many = /^How many (\w+)\?$/.exec(q)
      const more = /^More (\w+) than (\w+)\?$/.exec(q)
      const expected = q === "How many shapes?" ? String(o + s + t)
        : many ? String(counts[many[1]!]) : counts[more![1]!]! > counts[more![2]!]! ? "yes" : "no"
      assert.equal(e.answer, expected, e.problem)
      assert.equal(boxed(e.trace!), e.answer)
      assert.deepEqual(e.perceived!.parse(/<think>(.*)<\/think>/.exec(e.trace!)![1]!), [o, s, t])
      const lit = e.image.data.reduce((n, v) => n + (v > 0 ? 1 : 0), 0)
      assert.ok(lit >= 20 * (o + s + t) && lit <= 130 * (o + s + t), `${lit} lit pixels for ${o + s + t} shapes`)
    }
  })
  it("test differs from train", () => {
    const t = Shapes.generate({ split: "test", size: 20, height: 28, width: 56, hintRate: 0.3, seed: 3 })
    assert.notDeepEqual(Array.from(t[0]!.image.data), Array.from(ex[0]!.image.data))
  })
})

describe("JSONL datasets", () => {
  const shape = { height: 28, width: 56, channels: 1 }
  const parseAnswer = (a: string) => (a.trim() === "" ? null : a.trim())
  const setup = async (lines: ReadonlyArray<string>) => {
    const dir = await mkdtemp(join(tmpdir(), "papo-data-"))
    const img = Images.encodePng([{ height: 14, width: 28, channels: 1, data: new Float32Array(14 * 28).fill(0.5) }], 1)
    await writeFile(join(dir, "a.png"), img)
    const rgba = Buffer.alloc(20 * 10 * 4, 200)
    await writeFile(join(dir, "b.jpg"), jpeg.encode({ width: 20, height: 10, data: rgba }, 90).data)
    await writeFile(join(dir, "broken.png"), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]))
    await writeFile(join(dir, "data.jsonl"), lines.join("\n") + "\n")
    return join(dir, "data.jsonl")
  }
  const load = (source: string, onBadRecord: "stop" | "skip") =>
    Effect.runPromise(Effect.result(Dataset.loadSplit({
      ...digitOptions("train", 1), source, onBadRecord, imageShape: shape, parseAnswer
    })))
  const good = [
    JSON.stringify({ images: ["a.png"], problem: "<image>What is shown?", answer: "4" }),
    JSON.stringify({ images: "b.jpg", problem: "Count.", answer: 3, response: "<think>x</think>\\boxed{3}", subset: "easy" })
  ]

  it("loads PNG and JPEG, resized to the model's input, paths relative to the file", async () => {
    const r = await load(await setup(good), "stop")
    assert.equal(r._tag, "Success")
    if (r._tag !== "Success") return
    const [a, b] = r.success.examples
    assert.deepEqual([a!.image.height, a!.image.width, a!.image.channels], [28, 56, 1])
    assert.ok(Math.abs(a!.image.data[100]! - 128 / 255) < 0.01)
    assert.ok(Math.abs(b!.image.data[500]! - 200 / 255) < 0.03)
    assert.equal(a!.problem, "What is shown?")
    assert.equal(b!.answer, "3")
    assert.equal(b!.subset, "easy")
    assert.equal(b!.trace, "<think>x</think>\\boxed{3}")
  })

  const bad: ReadonlyArray<[string, string, RegExp]> = [
    ["malformed line", "{not json", /:2: malformed JSON/],
    ["missing image", JSON.stringify({ images: ["nope.png"], problem: "q", answer: "1" }), /:2: image nope\.png cannot be read \(ENOENT\)/],
    ["corrupt image", JSON.stringify({ images: ["broken.png"], problem: "q", answer: "1" }), /:2: image broken\.png is corrupt/],
    ["unparseable answer", JSON.stringify({ images: ["a.png"], problem: "q", answer: " " }), /:2: the verifier cannot read the answer/],
    ["missing field", JSON.stringify({ images: ["a.png"], answer: "1" }), /:2: "problem" must be a non-empty string/]
  ]
  for (const [kind, line, reason] of bad) {
    it(`${kind}: stops with file, line and reason, or is skipped and counted`, async () => {
      const file = await setup([good[0]!, line, good[1]!])
      const stop = await load(file, "stop")
      assert.equal(stop._tag, "Failure")
      if (stop._tag === "Failure") {
        assert.equal(stop.failure.file, file)
        assert.equal(stop.failure.line, 2)
        assert.match(stop.failure.message, reason)
      }
      const skip = await load(file, "skip")
      assert.equal(skip._tag, "Success")
      if (skip._tag === "Success") {
        assert.equal(skip.success.examples.length, 2)
        assert.equal(skip.success.skipped.length, 1)
        assert.match(skip.success.skipped[0]!.message, reason)
      }
    })
  }

  it("a missing file is reported", async () => {
    const r = await load("/nonexistent/x.jsonl", "skip")
    assert.ok(r._tag === "Failure" && /cannot read the file \(ENOENT\)/.test(r.failure.message))
  })
})

describe("Data order", () => {
  it("each epoch is a permutation, and any cursor continues the same order", () => {
    const all = Dataset.batchAt(10, 30, 0, 5)
    for (let e = 0; e < 3; e++) assert.deepEqual([...all.slice(e * 10, e * 10 + 10)].sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    assert.deepEqual(Dataset.batchAt(10, 7, 8, 5), all.slice(8, 15))
    assert.notDeepEqual(all.slice(0, 10), all.slice(10, 20))
  })
})

describe("What the config leaves to the data", () => {
  it("fitShape: aspect kept, into [minPixels, maxPixels], sides multiples of the patch", () => {
    const limits = { minPixels: 784, maxPixels: 3136, patchSize: 7 }
    assert.deepEqual(Images.fitShape(96, 96, limits), { height: 56, width: 56 })
    assert.deepEqual(Images.fitShape(28, 56, limits), { height: 28, width: 56 }) // the digit task's, untouched
    assert.deepEqual(Images.fitShape(10, 10, limits), { height: 28, width: 28 }) // scaled up to minPixels
    assert.deepEqual(Images.fitShape(300, 600, limits), { height: 35, width: 77 })
    fc.assert(fc.property(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 2, max: 16 }), (h, w, p) => {
      const s = Images.fitShape(h, w, { minPixels: 4 * p * p, maxPixels: 64 * p * p, patchSize: p })
      return s.height % p === 0 && s.width % p === 0 && s.height * s.width <= 64 * p * p && s.height * s.width >= p * p
    }))
  })

  it("hasColour: RGB with hue, not grey (JPEG noise tolerated)", () => {
    const px = (...rgb: Array<number>) => ({ width: 1, height: 1, rgba: new Uint8Array([...rgb, 255]) })
    assert.equal(Images.hasColour(px(200, 40, 40)), true)
    assert.equal(Images.hasColour(px(120, 125, 118)), false)
  })

  const named = { imageHeight: 28, imageWidth: 56, imageChannels: 1, patchSize: 7, maxPromptLength: 16, maxResponseLength: 16 }
  /** A JSONL split of `records` over one red 96 × 64 JPEG, and its config. */
  const written = async (records: ReadonlyArray<object>, overrides: ReadonlyArray<string> = []) => {
    const dir = await mkdtemp(join(tmpdir(), "papo-follow-"))
    const rgba = Buffer.alloc(96 * 64 * 4)
    for (let p = 0; p < 96 * 64; p++) rgba.set([200, 30, 30, 255], p * 4)
    await writeFile(join(dir, "red.jpg"), jpeg.encode({ width: 96, height: 64, data: rgba }, 90).data)
    await writeFile(join(dir, "d.jsonl"), records.map((r) => JSON.stringify({ images: ["red.jpg"], ...r })).join("\n"))
    const file = join(dir, "d.jsonl")
    const config = await Effect.runPromise(loadConfig({ overrides: [`data.train=${file}`, `data.test=${file}`, `trainer.outputDir=${join(dir, "runs")}`, ...overrides] }))
    return { dir, file, config }
  }
  const loaded = async (records: ReadonlyArray<object>, overrides: ReadonlyArray<string> = []) => {
    const { file, config } = await written(records, overrides)
    return { file, result: await Effect.runPromise(Effect.result(Dataset.load(config, { parseAnswer: (a) => a, named }))) }
  }

  it("image size from the data (RGB kept), lengths from the longest prompt and target", async () => {
    const { result } = await loaded([{ problem: "<image>Which colour?", answer: "red" }, { problem: "Colour of the square?", answer: "yellow" }])
    assert.ok(result._tag === "Success")
    const d = result.success.config.data
    // 64 × 96 → 3136 pixels at most, aspect kept, multiples of 7: 42 × 63 (scale 0.714, sides rounded down), RGB.
    assert.deepEqual([d.imageHeight, d.imageWidth, d.imageChannels], [42, 63, 3])
    const [r, g, b] = result.success.train.examples[0]!.image.data
    assert.ok(r! > 0.7 && g! < 0.25 && b! < 0.25, `the red stays red: ${[r, g, b]}`)
    // "Colour of the square?" is 21 tokens → 24; target "<think></think>\boxed{yellow}" is 3 + 7 tokens + EOS = 11 → 1.5·11 → 16.5 → 24.
    assert.deepEqual([d.maxPromptLength, d.maxResponseLength], [24, 24])
  })

  it("a set length that records exceed names how many, and the longest", async () => {
    const { file, result } = await loaded([
      { problem: "Which colour is the shape?", answer: "red" },
      { problem: "Short?", answer: "red" },
      { problem: "Which colour is the big one?", answer: "red" }
    ], ["data.maxPromptLength=12"])
    assert.ok(result._tag === "Failure" && result.failure._tag === "PromptTooLongError")
    // Both splits read the file: each record counts once. "Which colour is the big one?" is 28 characters.
    assert.deepEqual(result.failure.offenders, [{ file, id: `${file}:3`, tokens: 28 }, { file, id: `${file}:1`, tokens: 26 }])
    assert.deepEqual([result.failure.count, result.failure.total, result.failure.max], [2, 3, 12])
    assert.equal(result.failure.message,
      `2 of 3 prompts have more than data.maxPromptLength = 12 tokens: ${file}:3 (28), ${file}:1 (26); raise data.maxPromptLength, or leave it unset to follow the data`)
  })

  it("too many long prompts: the longest few are named, the count covers all", async () => {
    const records = Array.from({ length: 9 }, (_, i) => ({ problem: `Q${"?".repeat(10 + i)}`, answer: "red" }))
    const { file, result } = await loaded(records, ["data.maxPromptLength=8"])
    assert.ok(result._tag === "Failure" && result.failure._tag === "PromptTooLongError")
    assert.equal(result.failure.count, 9)
    assert.deepEqual(result.failure.offenders.map((o) => o.id), [9, 8, 7, 6, 5].map((line) => `${file}:${line}`))
    assert.match(result.failure.message, /^9 of 9 prompts .*:9 \(19\), .*, …; raise/) // "Q" + 18 "?"
  })

  it("papo train and papo sft stop at load on a too-long prompt, before a run folder or a model exists", async () => {
    const { Verifier } = await import("../src/Verifier.js")
    const { sft, train } = await import("../src/Train.js")
    const { dir, file, config } = await written([
      { problem: "Colour?", answer: "red" },
      { problem: "Which colour is the big one?", answer: "red" }
    ], ["data.maxPromptLength=16", "trainer.maxSteps=1", "sft.steps=1", "worker.actor.model=tiny", "trainer.threads=1", "trainer.logger=quiet"])
    const commands: ReadonlyArray<readonly [string, Effect.Effect<unknown, RunError, VerifierService>]> = [
      ["train", train(config)],
      ["sft", sft(config)]
    ]
    for (const [name, command] of commands) {
      const r = await Effect.runPromise(Effect.result(command.pipe(Effect.provide(Verifier.mathRuler))))
      assert.ok(r._tag === "Failure", name)
      assert.equal(r.failure._tag, "PromptTooLongError", `${name}: ${r.failure.message}`)
      assert.deepEqual((r.failure as Dataset.PromptTooLongError).offenders, [{ file, id: `${file}:2`, tokens: 28 }], name)
    }
    assert.equal(existsSync(join(dir, "runs")), false, "no run folder was written")
  })

  it("an SFT target longer than data.maxResponseLength is named at load", async () => {
    const { file, result } = await loaded([
      { problem: "Colour?", answer: "red", response: "<think>the square is red, clearly</think>\\boxed{red}" },
      { problem: "Colour?", answer: "red" }
    ], ["data.maxResponseLength=16"])
    assert.ok(result._tag === "Failure" && result.failure._tag === "ResponseTooLongError")
    // <think> + 26 characters + </think> + \boxed{ + "red}" + EOS = 1 + 26 + 1 + 1 + 4 + 1
    assert.deepEqual(result.failure.offenders, [{ file, id: `${file}:1`, tokens: 34 }])
  })

  it("the record fields are configurable (EasyR1's prompt_key, answer_key, image_key)", async () => {
    const rec = Dataset.parseFields({ picture: { path: "a.png", bytes: null }, question: "<image>Q?", solution: 4 },
      { promptKey: "question", answerKey: "solution", imageKey: "picture", responseKey: "response" }, (a) => a)
    assert.deepEqual(rec, { image: { path: "a.png" }, problem: "Q?", answer: "4" })
  })
})
