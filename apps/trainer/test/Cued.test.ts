import assert from "node:assert/strict"
import { describe, it } from "node:test"
import * as fc from "fast-check"
import * as Cued from "../src/Cued.js"
import { classify, type Example } from "../src/Example.js"
import { Rng } from "@papo/random"

const options = (over: Partial<Cued.CuedOptions> = {}): Cued.CuedOptions => ({
  split: "train",
  size: 4000,
  height: 28,
  width: 56,
  cueRate: 0.7,
  agree: 0.95,
  followRate: 0,
  noise: [0.2, 0.4],
  intensity: [0.6, 1],
  jitter: 0,
  scale: 3,
  seed: 3,
  ...over
})

/** The digit drawn, the number added and the cue word, read back from the example's text. */
const parts = (e: Example) => {
  const m = /^(?:([a-z]+) )?x\+(\d)\?$/.exec(e.problem)
  assert.ok(m, `problem ${e.problem}`)
  return { d: e.perceived!.values[0]!, k: Number(m[2]), cue: m[1] ?? null }
}

const count = <A>(xs: ReadonlyArray<A>, p: (a: A) => boolean) => xs.filter(p).length

describe("Cued task: the cue map", () => {
  it("ten distinct words, one per digit, and cueDigit inverts the map", () => {
    assert.equal(new Set(Cued.cueWords).size, 10)
    for (let d = 0; d < 10; d++) assert.equal(Cued.cueDigit(Cued.cueWords[d]!), d)
    assert.equal(Cued.cueDigit("x"), null)
  })

  it("every cued question's cue word names the digit its prior holds", () => {
    for (const e of Cued.generate(options({ size: 500 }))) {
      const { cue } = parts(e)
      assert.deepEqual(cue === null ? undefined : [Cued.cueDigit(cue)], e.perceived!.prior)
    }
  })
})

describe("Cued task: generation", () => {
  const train = Cued.generate(options())

  it("is deterministic in its seed; the test split does not depend on it", () => {
    const again = Cued.generate(options({ size: 30 }))
    assert.deepEqual(again.map((e) => [e.problem, Array.from(e.image.data)]), train.slice(0, 30).map((e) => [e.problem, Array.from(e.image.data)]))
    const other = Cued.generate(options({ size: 30, seed: 4 }))
    assert.notDeepEqual(other.map((e) => e.problem), again.map((e) => e.problem))
    const t1 = Cued.generate(options({ split: "test", size: 30, seed: 1 }))
    const t2 = Cued.generate(options({ split: "test", size: 30, seed: 2, cueRate: 0.1, agree: 0.2 }))
    assert.deepEqual(t1.map((e) => [e.problem, e.subset]), t2.map((e) => [e.problem, e.subset]))
  })

  it("readQuestion reads the digit and the cue back from the text", () => {
    for (const e of train.slice(0, 300)) {
      assert.deepEqual(Cued.readQuestion(e.problem, e.answer), { digit: e.perceived!.values[0], cue: e.perceived!.prior?.[0] ?? null })
    }
    assert.equal(Cued.readQuestion("pear x+3?", "5"), null)
    assert.equal(Cued.readQuestion("Sum of the digits?", "5"), null)
  })

  it("the answer is the digit plus the number; the gold trace states the digit and boxes the answer", () => {
    for (const e of train.slice(0, 500)) {
      const { d, k } = parts(e)
      assert.equal(e.answer, String(d + k))
      assert.equal(e.trace, `<think>${d}+${k}=${d + k}</think>\\boxed{${d + k}}`)
      assert.equal(classify(e, e.trace!, true), "correct")
    }
  })

  it("cue rate and agree rate match the settings (4000 draws, ±4 standard errors)", () => {
    for (const agree of [0.95, 0.5]) {
      const xs = agree === 0.95 ? train : Cued.generate(options({ agree }))
      const cued = xs.filter((e) => e.subset !== "uncued")
      const se = (p: number, n: number) => Math.sqrt((p * (1 - p)) / n)
      assert.ok(Math.abs(cued.length / xs.length - 0.7) < 4 * se(0.7, xs.length), `cue rate ${cued.length / xs.length}`)
      const agreeing = count(cued, (e) => e.perceived!.prior![0] === e.perceived!.values[0])
      assert.ok(Math.abs(agreeing / cued.length - agree) < 4 * se(agree, cued.length), `agree ${agreeing / cued.length} for ${agree}`)
      for (const e of cued) assert.equal(e.subset, e.perceived!.prior![0] === e.perceived!.values[0] ? "agree" : "conflict")
    }
  })

  it("followRate: that share of conflicting training traces states the cue's digit; the answer stays the image's", () => {
    const followRate = 0.8
    const xs = Cued.generate(options({ agree: 0.5, followRate }))
    const conflicts = xs.filter((e) => e.subset === "conflict")
    const stated = (e: Example) => Number(/^<think>(\d)\+/.exec(e.trace!)![1])
    const following = count(conflicts, (e) => stated(e) === e.perceived!.prior![0])
    const se = Math.sqrt((followRate * (1 - followRate)) / conflicts.length)
    assert.ok(Math.abs(following / conflicts.length - followRate) < 4 * se, `follow share ${following / conflicts.length}`)
    for (const e of conflicts) {
      const { k } = parts(e)
      const digit = stated(e)
      assert.equal(e.trace, `<think>${digit}+${k}=${digit + k}</think>\\boxed{${digit + k}}`)
      assert.equal(e.answer, String(e.perceived!.values[0]! + k))
    }
    // Agreeing and uncued traces, and every test trace, state the image's digit.
    for (const e of xs.filter((x) => x.subset !== "conflict")) assert.equal(stated(e), e.perceived!.values[0])
    const test = Cued.generate(options({ split: "test", size: 300, followRate: 1 }))
    for (const e of test) assert.equal(stated(e), e.perceived!.values[0])
  })

  it("the test split is equal conflict / agree / uncued thirds", () => {
    const test = Cued.generate(options({ split: "test", size: 300 }))
    for (const s of ["conflict", "agree", "uncued"]) assert.equal(count(test, (e) => e.subset === s), 100)
    for (const e of test) {
      const prior = e.perceived!.prior
      if (e.subset === "uncued") assert.equal(prior, undefined)
      else assert.equal(prior![0] === e.perceived!.values[0], e.subset === "agree")
    }
  })
})

describe("Cued task: the image", () => {
  const clean = { height: 28, width: 56, scale: 3, dx: 0, dy: 0, intensity: 1, sigma: 0 }

  it("a clean glyph has 9 pixels per font pixel (hand-counted: a 1 has 10, an 8 has 17)", () => {
    const sum = (d: number) => Cued.drawDigit(d, clean, Rng.make(1)).data.reduce((a, b) => a + b, 0)
    assert.equal(sum(1), 90)
    assert.equal(sum(8), 153)
  })

  it("the ten glyphs differ", () => {
    const keys = Array.from({ length: 10 }, (_, d) => Array.from(Cued.drawDigit(d, clean, Rng.make(1)).data).join(""))
    assert.equal(new Set(keys).size, 10)
  })

  it("without noise, the glyph sits within ±jitter of the centre, at the drawn stroke intensity", () => {
    const xs = Cued.generate(options({ size: 200, noise: [0, 0], intensity: [0.5, 0.5], jitter: 2 }))
    const centred = (d: number) => Cued.drawDigit(d, clean, Rng.make(1))
    const minX = (data: Float32Array) => Math.min(...Array.from(data).flatMap((v, i) => (v > 0 ? [i % 56] : [])))
    const minY = (data: Float32Array) => Math.min(...Array.from(data).flatMap((v, i) => (v > 0 ? [Math.floor(i / 56)] : [])))
    for (const e of xs) {
      const d = e.perceived!.values[0]!
      const dx = minX(e.image.data) - minX(centred(d).data)
      const dy = minY(e.image.data) - minY(centred(d).data)
      assert.ok(Math.abs(dx) <= 2 && Math.abs(dy) <= 2, `offset (${dx}, ${dy})`)
      assert.deepEqual([...new Set(e.image.data)].sort(), [0, 0.5])
    }
  })

  it("rejects a glyph that does not fit", () => {
    assert.throws(() => Cued.drawDigit(3, { ...clean, dx: 30 }, Rng.make(1)), /does not fit a 56×28 canvas/)
  })
})

describe("Cued task: exact classification of responses", () => {
  const test = Cued.generate(options({ split: "test", size: 300 }))
  const response = (stated: number, k: number, answer: number) => `<think>${stated}+${k}=${answer}</think>\\boxed{${answer}}`

  it("conflict: correct, followed the prior, other perception error, reasoning error, format", () => {
    fc.assert(
      fc.property(fc.constantFrom(...test.filter((e) => e.subset === "conflict")), fc.integer({ min: 0, max: 9 }), (e, other) => {
        const { d, k } = parts(e)
        const c = e.perceived!.prior![0]!
        assert.notEqual(c, d)
        assert.equal(classify(e, response(d, k, d + k), true), "correct")
        assert.equal(classify(e, response(c, k, c + k), false), "prior")
        assert.equal(classify(e, response(d, k, d + k + 1), false), "reasoning")
        if (other !== c && other !== d) assert.equal(classify(e, response(other, k, other + k), false), "perception")
        assert.equal(classify(e, `\\boxed{${c + k}}`, false), "format")
        assert.equal(classify(e, `<think>${k}</think>\\boxed{${c + k}}`, false), "format")
      })
    )
  })

  it("agreeing and uncued questions never count as following the prior", () => {
    for (const e of test.filter((x) => x.subset !== "conflict")) {
      const { d, k } = parts(e)
      const wrong = (d + 1) % 10
      assert.equal(classify(e, response(wrong, k, wrong + k), false), "perception")
    }
  })
})
