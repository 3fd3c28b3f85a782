/**
 * The built-in task on real handwritten digits: two or more MNIST digits side by side (28 × 28·n, one
 * channel) and a question over them. The gold trace states what was seen before computing
 * (`<think>7+5=12</think>\boxed{12}`), so a wrong answer is a perception error when the digits it states
 * are not the image's, and a reasoning error otherwise.
 *
 * Train and test draw from disjoint MNIST images: for each digit class the last `testImageShare` of the
 * package's images are test images. A share `hintRate` of questions states one digit in the text
 * ("First digit is 7."), so the question gives part of the answer away: those form the
 * low-vision-dependency subset, the others the high one.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import type { Example, Image, Perceived } from "./Example.js"
import { Rng } from "@papo/random"

/**
 * A digit question kind.
 *
 * @category models
 */
export type QuestionType = "sum" | "difference" | "larger" | "product" | "count"

/**
 * How to generate a split.
 *
 * @category configuration
 */
export interface DigitsOptions {
  readonly split: "train" | "test"
  readonly size: number
  readonly numDigits: number
  readonly questionTypes: ReadonlyArray<QuestionType>
  readonly hintRate: number
  readonly testImageShare: number
  readonly seed: number
}

interface MnistDigit {
  readonly raw: ArrayLike<number>
  readonly length: number
}

const SIDE = 28
let mnistCache: ReadonlyArray<MnistDigit> | undefined
const mnist = (): ReadonlyArray<MnistDigit> => {
  // The package is CommonJS JSON (41 MB): load once, on first use. Its `set()` shuffles with Math.random
  // and its `get()` falls back to a random image on a bad index; this module reads `raw` directly.
  mnistCache ??= createRequire(import.meta.url)("mnist") as ReadonlyArray<MnistDigit>
  return mnistCache
}

/**
 * The MNIST image indices of digit class `d` that a split may use (disjoint between splits).
 *
 * @category constructors
 */
export const imagePool = (d: number, split: "train" | "test", testImageShare: number): { start: number; end: number } => {
  const n = mnist()[d]!.length
  const nTest = Math.ceil(n * testImageShare)
  return split === "train" ? { start: 0, end: n - nTest } : { start: n - nTest, end: n }
}

/**
 * The 28 × 28 pixels of MNIST image `index` of class `d`, in [0, 1].
 *
 * @category constructors
 */
export const digitPixels = (d: number, index: number): Float32Array => {
  const digit = mnist()[d]!
  if (!(Number.isInteger(index) && index >= 0 && index < digit.length)) {
    throw new Error(`Error in digitPixels: class ${d} has ${digit.length} images, index ${index} is out of range`)
  }
  return Float32Array.from({ length: SIDE * SIDE }, (_, i) => digit.raw[index * SIDE * SIDE + i]!)
}

const ordinals = ["First", "Second", "Third", "Fourth"]

/** The digits a thinking states: the numbers before the first `:` (or, without one, the first `=`). */
const parseStated = (think: string): ReadonlyArray<number> | null => {
  const cut = think.includes(":") ? think.indexOf(":") : think.indexOf("=")
  if (cut < 0) return null
  const nums = think.slice(0, cut).match(/\d+/g)
  return nums ? nums.map(Number) : null
}

/**
 * The question, answer and gold trace for digits `ds` (left to right).
 *
 * @example
 * question("sum", [7, 5], 0) // => { problem: "Sum of the digits?", answer: "12", trace: "<think>7+5=12</think>\\boxed{12}" }
 *
 * @category constructors
 */
export const question = (
  type: QuestionType,
  ds: ReadonlyArray<number>,
  countDigit: number
): { readonly problem: string; readonly answer: string; readonly trace: string } => {
  const list = ds.join(",")
  const out = (problem: string, work: string, answer: number | string) => ({
    problem,
    answer: String(answer),
    trace: `<think>${work}=${answer}</think>\\boxed{${answer}}`
  })
  switch (type) {
    case "sum":
      return out("Sum of the digits?", ds.join("+"), ds.reduce((a, b) => a + b, 0))
    case "product":
      return out("Product of the digits?", ds.join("*"), ds.reduce((a, b) => a * b, 1))
    case "larger":
      return out("Largest digit?", `max(${list})`, Math.max(...ds))
    case "difference": {
      const hi = Math.max(...ds)
      const lo = Math.min(...ds)
      return out(
        "Largest minus smallest digit?",
        ds.length === 2 ? `|${ds[0]}-${ds[1]}|` : `${list}:${hi}-${lo}`,
        hi - lo
      )
    }
    case "count":
      return out(
        `How many ${countDigit}s?`,
        `${list}:#${countDigit}`,
        ds.filter((d) => d === countDigit).length
      )
  }
}

/**
 * Places 28 × 28 digit images side by side.
 *
 * @category constructors
 */
export const composeImage = (digits: ReadonlyArray<Float32Array>): Image => {
  const width = SIDE * digits.length
  const data = new Float32Array(SIDE * width)
  digits.forEach((px, k) => {
    for (let y = 0; y < SIDE; y++) data.set(px.subarray(y * SIDE, (y + 1) * SIDE), y * width + k * SIDE)
  })
  return { height: SIDE, width, channels: 1, data }
}

/**
 * Generates a split, deterministically from `seed` (the same options give the same examples).
 *
 * @category constructors
 */
export const generate = (options: DigitsOptions): Array<Example> => {
  const rng = Rng.make(options.seed, "digits", options.split)
  const pools = Array.from({ length: 10 }, (_, d) => imagePool(d, options.split, options.testImageShare))
  return Array.from({ length: options.size }, (_, i) => {
    const ds = Array.from({ length: options.numDigits }, () => Rng.int(rng, 10))
    const images = ds.map((d) => {
      const { start, end } = pools[d]!
      return start + Rng.int(rng, end - start)
    })
    const type = options.questionTypes[Rng.int(rng, options.questionTypes.length)]!
    // Ask for a digit that is in the image half the time, so counts are not almost always 0.
    const countDigit = rng.random() < 0.5 ? ds[Rng.int(rng, ds.length)]! : Rng.int(rng, 10)
    const hinted = rng.random() < options.hintRate
    const hintAt = Rng.int(rng, ds.length)
    const q = question(type, ds, countDigit)
    const perceived: Perceived = { values: ds, parse: parseStated }
    return {
      id: `digits-${options.split}-${i}`,
      image: composeImage(ds.map((d, k) => digitPixels(d, images[k]!))),
      problem: hinted ? `${ordinals[hintAt]} digit is ${ds[hintAt]}. ${q.problem}` : q.problem,
      answer: q.answer,
      trace: q.trace,
      subset: hinted ? "low" : "high",
      perceived,
      sources: ds.map((d, k) => `mnist/${d}/${images[k]}`)
    }
  })
}

