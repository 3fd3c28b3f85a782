/**
 * The second built-in task, drawn by code: circles, squares and triangles on a black canvas, and a
 * question counting or comparing them. The gold trace states the three counts it saw
 * (`<think>o2,s1,t0:2</think>\boxed{2}`: o circles, s squares, t triangles), so wrong answers classify
 * as perception or reasoning errors as in the digit task. A share `hintRate` of questions states one
 * count in the text (low vision dependency).
 *
 * @since 0.1.0
 */
import type { Example, Image } from "./Example.js"
import { Rng } from "@papo/random"

/**
 * How to generate a split.
 *
 * @category configuration
 */
export interface ShapesOptions {
  readonly split: "train" | "test"
  readonly size: number
  readonly height: number
  readonly width: number
  readonly hintRate: number
  readonly seed: number
}

const kinds = ["circle", "square", "triangle"] as const
const plural = ["circles", "squares", "triangles"]

/** Whether pixel (x, y) (cell-local, centred) lies in a shape of half-size r. */
const inside = (kind: number, x: number, y: number, r: number): boolean => {
  switch (kinds[kind]) {
    case "circle":
      return x * x + y * y <= r * r
    case "square":
      return Math.abs(x) <= r * 0.8 && Math.abs(y) <= r * 0.8
    default: // triangle, apex up
      return y >= -r && y <= r && Math.abs(x) <= (y + r) / 2
  }
}

/**
 * Draws shapes into cells of a `height × width` canvas: `shapes[k]` is the kind (0 circle, 1 square,
 * 2 triangle) in cell `cells[k]` of a grid of 14-px cells.
 *
 * @category constructors
 */
export const draw = (
  height: number,
  width: number,
  shapes: ReadonlyArray<{ readonly kind: number; readonly cell: number; readonly r: number; readonly dx: number; readonly dy: number }>
): Image => {
  const cols = Math.floor(width / 14)
  const data = new Float32Array(height * width)
  for (const s of shapes) {
    const cx = (s.cell % cols) * 14 + 7 + s.dx
    const cy = Math.floor(s.cell / cols) * 14 + 7 + s.dy
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (inside(s.kind, x - cx, y - cy, s.r)) data[y * width + x] = 1
      }
    }
  }
  return { height, width, channels: 1, data }
}

/** The three counts a thinking states: `o<n>,s<n>,t<n>` before the `:`. */
const parseCounts = (think: string): ReadonlyArray<number> | null => {
  const m = /^o(\d+),s(\d+),t(\d+):/.exec(think.trim())
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null
}

/**
 * Generates a split, deterministically from `seed`; train and test come from different streams.
 *
 * @category constructors
 */
export const generate = (options: ShapesOptions): Array<Example> => {
  const rng = Rng.make(options.seed, "shapes", options.split)
  const cells = Math.floor(options.height / 14) * Math.floor(options.width / 14)
  if (cells < 2) throw new Error(`Error in Shapes.generate: a ${options.height}×${options.width} canvas holds fewer than 2 cells of 14 px`)
  return Array.from({ length: options.size }, (_, i) => {
    const n = 1 + Rng.int(rng, Math.min(cells, 5))
    const order = Rng.permutation(cells, rng)
    const shapes = Array.from({ length: n }, (_, k) => ({
      kind: Rng.int(rng, 3),
      cell: order[k]!,
      r: 4 + Rng.int(rng, 3),
      dx: Rng.int(rng, 3) - 1,
      dy: Rng.int(rng, 3) - 1
    }))
    const counts = [0, 1, 2].map((kind) => shapes.filter((s) => s.kind === kind).length)
    const seen = `o${counts[0]},s${counts[1]},t${counts[2]}`
    const a = Rng.int(rng, 3)
    const b = (a + 1 + Rng.int(rng, 2)) % 3
    const qType = Rng.int(rng, 3)
    const [problem, answer] = qType === 0
      ? [`How many ${plural[a]}?`, String(counts[a])]
      : qType === 1
      ? ["How many shapes?", String(n)]
      : [`More ${plural[a]} than ${plural[b]}?`, counts[a]! > counts[b]! ? "yes" : "no"]
    const hinted = rng.random() < options.hintRate
    const h = Rng.int(rng, 3)
    const hint = `${counts[h]} ${counts[h] === 1 ? kinds[h] : plural[h]}. `
    return {
      id: `shapes-${options.split}-${i}`,
      image: draw(options.height, options.width, shapes),
      problem: hinted ? hint + problem : problem,
      answer,
      trace: `<think>${seen}:${answer}</think>\\boxed{${answer}}`,
      subset: hinted ? "low" : "high",
      perceived: { values: counts, parse: parseCounts }
    }
  })
}
