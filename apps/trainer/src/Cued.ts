/**
 * The cued-digit task: a miniature with the problem PAPO addresses, a language prior that competes with
 * the image. The image shows one digit drawn by code (a 5 × 7 bitmap font scaled up, with a per-item
 * stroke intensity and pixel noise, so some images are clear and some ambiguous); the question adds a
 * number to it (`"x+3?"`). Some questions carry a *cue*: a word tied to one digit by a fixed map
 * (`"ruby x+3?"`, ruby ↦ 4). `agree` is the probability that the cue's digit is the digit drawn, so a
 * warm start on data with `agree` near 1 learns the prior, and RL data with `agree` = 0.5 punishes it.
 *
 * The gold trace states the digit read, then computes (`<think>7+3=10</think>\boxed{10}`), so every
 * response is classified exactly: correct; followed the prior (stated the cue's digit where the image
 * shows another); other perception error; reasoning error; format. With `followRate` > 0 the gold trace of
 * a conflicting training question states the cue's digit that often (the warm start then learns to follow
 * the prior at about that rate, and still to read).
 *
 * The test split holds three equal subsets, `conflict` (cue ≠ image), `agree` (cue = image) and
 * `uncued`, and is drawn from a stream that does not depend on the seed, so every run of a study is
 * evaluated on the same questions.
 *
 * @since 0.1.0
 */
import type { Example, Image, Perceived } from "./Example.js"
import { Rng } from "@papo/random"

/**
 * How to generate a split.
 *
 * @category configuration
 */
export interface CuedOptions {
  readonly split: "train" | "test"
  readonly size: number
  /** Canvas (the model's input). */
  readonly height: number
  readonly width: number
  /** Share of training questions with a cue word. */
  readonly cueRate: number
  /** Probability that a training cue names the digit drawn. */
  readonly agree: number
  /**
   * Probability that the gold trace of a conflicting training question reads the cue's digit instead of
   * the image's: a teacher that leans on the prior, as a pretrained VLM does. The answer stays the
   * image's, so only SFT (which imitates the trace) sees it; 0 for RL and test data.
   */
  readonly followRate: number
  /** Per-item pixel-noise standard deviation, drawn uniformly from `[lo, hi]`. */
  readonly noise: readonly [number, number]
  /** Per-item stroke intensity, drawn uniformly from `[lo, hi]`. */
  readonly intensity: readonly [number, number]
  /** Glyph offset from the centre, uniform in `−jitter…jitter` pixels on each axis (0: fixed). */
  readonly jitter: number
  /** Each font pixel becomes a `scale × scale` block. */
  readonly scale: number
  /** Seed of the training split (the test split's stream is fixed). */
  readonly seed: number
}

/** A 5 × 7 bitmap font, one string of 35 bits per digit (row by row). */
const FONT: ReadonlyArray<string> = [
  "01110100011001110101110011000101110",
  "00100011000010000100001000010001110",
  "01110100010000100010001000100011111",
  "11111000100010000010000011000101110",
  "00010001100101010010111110001000010",
  "11111100001111000001000011000101110",
  "00110010001000011110100011000101110",
  "11111000010001000100010000100001000",
  "01110100011000101110100011000101110",
  "01110100011000101111000010001001100"
]
const FONT_W = 5
const FONT_H = 7

/**
 * The cue words, in the order of the digits they name (`cueWords[d]` ↦ `d`). The map is fixed: it is
 * the language prior the warm start learns and RL must learn to overrule.
 *
 * @example
 * cueWords.indexOf("ruby") // => 4
 *
 * @category constructors
 */
export const cueWords: ReadonlyArray<string> = (() => {
  const words = ["ruby", "jade", "opal", "mint", "rose", "sage", "plum", "teal", "gold", "onyx"]
  // A seeded shuffle, so the map is arbitrary (no word hints at its digit) and the same everywhere.
  const order = Rng.permutation(10, Rng.make(12, "cued", "cue-map"))
  return order.map((i) => words[i]!)
})()

/**
 * The digit a cue word names, or null for a word that is not a cue.
 *
 * @example
 * cueDigit(cueWords[7]!) // => 7
 *
 * @category constructors
 */
export const cueDigit = (word: string): number | null => {
  const d = cueWords.indexOf(word)
  return d < 0 ? null : d
}

/** A standard normal draw (Box–Muller). */
const gaussian = (rng: Rng.Rng): number => Math.sqrt(-2 * Math.log(1 - rng.random())) * Math.cos(2 * Math.PI * rng.random())

const uniform = (rng: Rng.Rng, [lo, hi]: readonly [number, number]) => lo + (hi - lo) * rng.random()

/**
 * Draws digit `d` centred on a `height × width` canvas, shifted by `(dx, dy)`, with stroke `intensity`
 * and Gaussian pixel noise of standard deviation `sigma`, clipped to [0, 1].
 *
 * @example
 * drawDigit(1, { height: 28, width: 56, scale: 3, dx: 0, dy: 0, intensity: 1, sigma: 0 }, rng).data.reduce((a, b) => a + b) // => 90 (the ten pixels of a 1, each a 3 × 3 block)
 *
 * @category constructors
 */
export const drawDigit = (
  d: number,
  o: { readonly height: number; readonly width: number; readonly scale: number; readonly dx: number; readonly dy: number; readonly intensity: number; readonly sigma: number },
  rng: Rng.Rng
): Image => {
  const gw = FONT_W * o.scale
  const gh = FONT_H * o.scale
  const x0 = Math.floor((o.width - gw) / 2) + o.dx
  const y0 = Math.floor((o.height - gh) / 2) + o.dy
  if (x0 < 0 || y0 < 0 || x0 + gw > o.width || y0 + gh > o.height) {
    throw new Error(`Error in Cued.drawDigit: a ${gw}×${gh} glyph at (${x0}, ${y0}) does not fit a ${o.width}×${o.height} canvas`)
  }
  const bits = FONT[d]!
  const data = new Float32Array(o.height * o.width)
  for (let y = 0; y < o.height; y++) {
    for (let x = 0; x < o.width; x++) {
      const fx = Math.floor((x - x0) / o.scale)
      const fy = Math.floor((y - y0) / o.scale)
      const on = x >= x0 && y >= y0 && fx < FONT_W && fy < FONT_H && bits[fy * FONT_W + fx] === "1"
      const v = (on ? o.intensity : 0) + (o.sigma > 0 ? o.sigma * gaussian(rng) : 0)
      data[y * o.width + x] = Math.min(1, Math.max(0, v))
    }
  }
  return { height: o.height, width: o.width, channels: 1, data }
}

/** The digit a thinking states: the number before its first `+`. */
const parseReading = (think: string): ReadonlyArray<number> | null => {
  const m = /^\s*(\d+)\s*\+/.exec(think)
  return m ? [Number(m[1])] : null
}

/**
 * The question, answer and gold trace for digit `d` plus `k`, with an optional cue word.
 *
 * @example
 * question(7, 3, "ruby") // => { problem: "ruby x+3?", answer: "10", trace: "<think>7+3=10</think>\\boxed{10}" }
 *
 * @category constructors
 */
export const question = (d: number, k: number, cue: string | null): { readonly problem: string; readonly answer: string; readonly trace: string } => ({
  problem: `${cue === null ? "" : `${cue} `}x+${k}?`,
  answer: String(d + k),
  trace: `<think>${d}+${k}=${d + k}</think>\\boxed{${d + k}}`
})

/** The subsets of the test split, in the order they cycle. */
const testSubsets = ["conflict", "agree", "uncued"] as const

/**
 * Generates a split, deterministically: the training split from `seed`, the test split from a fixed
 * stream (equal `conflict` / `agree` / `uncued` thirds whatever `cueRate` and `agree` are).
 *
 * @category constructors
 */
export const generate = (options: CuedOptions): Array<Example> => {
  const rng = options.split === "train" ? Rng.make(options.seed, "cued", "train") : Rng.make(0, "cued", "test")
  return Array.from({ length: options.size }, (_, i) => {
    const d = Rng.int(rng, 10)
    const k = 1 + Rng.int(rng, 9)
    const image = drawDigit(d, {
      height: options.height,
      width: options.width,
      scale: options.scale,
      dx: Rng.int(rng, 2 * options.jitter + 1) - options.jitter,
      dy: Rng.int(rng, 2 * options.jitter + 1) - options.jitter,
      intensity: uniform(rng, options.intensity),
      sigma: uniform(rng, options.noise)
    }, rng)
    const subset = options.split === "test"
      ? testSubsets[i % 3]!
      : rng.random() >= options.cueRate
      ? "uncued"
      : rng.random() < options.agree
      ? "agree"
      : "conflict"
    // A conflicting cue names one of the nine other digits, uniformly.
    const cued = subset === "uncued" ? null : subset === "agree" ? d : (d + 1 + Rng.int(rng, 9)) % 10
    const q = question(d, k, cued === null ? null : cueWords[cued]!)
    // The teacher follows the cue on a conflicting training question with probability followRate (no draw at 0).
    const follows = subset === "conflict" && options.split === "train" && options.followRate > 0 && rng.random() < options.followRate
    const trace = follows ? question(cued!, k, null).trace : q.trace
    const perceived: Perceived = { values: [d], parse: parseReading, ...(cued === null ? {} : { prior: [cued] }) }
    return {
      id: `cued-${options.split}-${i}`,
      image,
      problem: q.problem,
      answer: q.answer,
      trace,
      subset,
      perceived
    }
  })
}

/**
 * Reads a cued question back from its text and answer: the digit drawn (answer − the number added) and
 * the cue's digit (null without a cue); null when the text is not a cued-digit question.
 *
 * @example
 * readQuestion(`${cueWords[4]} x+3?`, "10") // => { digit: 7, cue: 4 }
 *
 * @category constructors
 */
export const readQuestion = (problem: string, answer: string): { readonly digit: number; readonly cue: number | null } | null => {
  const m = /^(?:([a-z]+) )?x\+(\d)\?$/.exec(problem)
  if (m === null) return null
  const cue = m[1] === undefined ? null : cueDigit(m[1])
  const digit = Number(answer) - Number(m[2])
  return (m[1] !== undefined && cue === null) || !(digit >= 0 && digit <= 9) ? null : { digit, cue }
}
