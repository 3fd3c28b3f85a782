/**
 * Patch masking of images for PAPO's implicit perception loss (Wang et al., arXiv 2507.06448, §3 and
 * App. G; reference `verl/trainer/papo_utils.py::random_patch_blackening`).
 *
 * A grid of `patchSize`-pixel squares is laid from the top-left corner (right and bottom patches may be
 * partial). A **strategy** picks which patches to hide and a **fill** says what to put there:
 *
 * | strategy   | patches masked                                   | uniform draws per image |
 * |------------|--------------------------------------------------|-------------------------|
 * | `random`   | patch i iff `draws[i] < prob` (the reference)    | N                       |
 * | `exact`    | the `round(prob·N)` patches with smallest draws  | N                       |
 * | `semantic` | the `⌊prob·N⌋` patches of highest saliency       | 0                       |
 * | `full`     | all N (the paper's ratio-1.0 ablation)           | 0                       |
 *
 * | fill    | masked pixels become                                                                    |
 * |---------|-----------------------------------------------------------------------------------------|
 * | `zero`  | 0 in every channel, alpha included (the reference)                                      |
 * | `mean`  | the image's per-channel mean colour (rounded for integer data)                          |
 * | `noise` | original + `noiseStd`·max·𝒩(0, 1), clamped to [0, max] (rounded for integer data)      |
 *
 * N = ⌈H/s⌉·⌈W/s⌉, draws are consumed in row-major patch order (y outer, x inner) and, in a batch, image
 * after image, as the reference's calls to `np.random.rand()` are. Every function returns new data and
 * leaves its input untouched.
 *
 * @since 0.1.0
 */
import {
  type Dims,
  type ImageArray,
  imageDims,
  MaskingError,
  maxValue,
  type PatchGrid,
  patchGrid,
  type PatchMask,
  type PixelArray
} from "./Image.js"
import type { Rng } from "@papo/random"
import { localContrast, type Saliency } from "./Saliency.js"

/**
 * How the patches to mask are chosen (see the module table).
 *
 * @category configuration
 */
export type Strategy = "random" | "exact" | "semantic" | "full"

/**
 * What masked pixels become (see the module table).
 *
 * @category configuration
 */
export type Fill = "zero" | "mean" | "noise"

const STRATEGIES: ReadonlyArray<Strategy> = ["random", "exact", "semantic", "full"]
const FILLS: ReadonlyArray<Fill> = ["zero", "mean", "noise"]

/**
 * Every knob of the masking, with the reference's names in the comments.
 *
 * @category configuration
 */
export interface MaskingConfig {
  /** How patches are chosen. */
  readonly strategy: Strategy
  /** Side of a grid square in pixels (`patch_size`, 14 in the reference). */
  readonly patchSize: number
  /** Mask probability / ratio in [0, 1] (`black_prob`, 0.6 in the reference). Ignored by `full`. */
  readonly prob: number
  /** What masked pixels become. */
  readonly fill: Fill
  /** Noise standard deviation as a fraction of the value range (255, or 1 for float data); `noise` fill only. */
  readonly noiseStd: number
  /** Patch scores for `semantic`; {@link localContrast} when absent. */
  readonly saliency?: Saliency | undefined
}

/**
 * The reference's masking: random, 14-px patches, probability 0.6, zero fill.
 *
 * @category configuration
 */
export const defaults: MaskingConfig = {
  strategy: "random",
  patchSize: 14,
  prob: 0.6,
  fill: "zero",
  noiseStd: 0.7 // the paper's pixel-noise baseline used std 0.6–0.8; the midpoint
}

/**
 * The names of {@link presets}.
 *
 * @category configuration
 */
export type PresetName = "reference" | "exact" | "mean" | "noise" | "semantic" | "full"

/**
 * Ready-made variants, each the reference default with one change:
 * `reference`; `exact` (exactly round(0.6·N) patches); `mean` and `noise` fills; `semantic` (top-k
 * local contrast); `full` (every patch, the paper's ratio-1.0 ablation).
 *
 * @example
 * maskImage(img, presets.exact, Mt19937.seed(0)).patchMask
 *
 * @category configuration
 */
export const presets: Readonly<Record<PresetName, MaskingConfig>> = {
  reference: defaults,
  exact: { ...defaults, strategy: "exact" },
  mean: { ...defaults, fill: "mean" },
  noise: { ...defaults, fill: "noise" },
  semantic: { ...defaults, strategy: "semantic" },
  full: { ...defaults, strategy: "full", prob: 1 }
}

/**
 * Checks a config (names, patch size, probability, noise level) and throws a {@link MaskingError} that
 * names the field at fault and lists the valid values.
 *
 * @example
 * validateConfig({ ...defaults, prob: 1.5 }) // throws MaskingError: prob must be a number in [0, 1], got 1.5
 *
 * @category constructors
 */
export const validateConfig = (config: MaskingConfig): MaskingConfig => {
  if (!STRATEGIES.includes(config.strategy)) {
    throw new MaskingError(`unknown strategy "${String(config.strategy)}"; valid: ${STRATEGIES.join(", ")}`)
  }
  if (!FILLS.includes(config.fill)) {
    throw new MaskingError(`unknown fill "${String(config.fill)}"; valid: ${FILLS.join(", ")}`)
  }
  if (!Number.isInteger(config.patchSize) || config.patchSize <= 0) {
    throw new MaskingError(`patchSize must be a positive integer, got ${config.patchSize}`)
  }
  if (typeof config.prob !== "number" || !(config.prob >= 0 && config.prob <= 1)) {
    throw new MaskingError(`prob must be a number in [0, 1], got ${config.prob}`)
  }
  if (config.fill === "noise" && !(config.noiseStd >= 0 && Number.isFinite(config.noiseStd))) {
    throw new MaskingError(`noiseStd must be a finite number >= 0, got ${config.noiseStd}`)
  }
  if (config.saliency !== undefined && typeof config.saliency !== "function") {
    throw new MaskingError(`saliency must be a function (image, grid) => scores`)
  }
  return config
}

/**
 * {@link defaults} with `overrides` applied, validated.
 *
 * @example
 * makeConfig({ strategy: "exact", prob: 0.4 }).patchSize // => 14
 *
 * @category constructors
 */
export const makeConfig = (overrides: Partial<MaskingConfig> = {}): MaskingConfig =>
  validateConfig({ ...defaults, ...overrides })

/**
 * How many uniform draws one image consumes: N for `random` and `exact`, 0 for `semantic` and `full`.
 * (The `noise` fill additionally takes normal draws from an {@link Rng}.)
 *
 * @example
 * drawsPerImage(defaults, patchGrid(30, 40, 14)) // => 9
 *
 * @category masking
 */
export const drawsPerImage = (config: MaskingConfig, grid: PatchGrid): number =>
  config.strategy === "random" || config.strategy === "exact" ? grid.count : 0

/**
 * Where the uniform draws come from: a generator (advanced as needed), or the draws themselves —
 * exactly {@link drawsPerImage} per image, in order, each in [0, 1).
 *
 * @category models
 */
export type Randomness = Rng.Rng | ArrayLike<number>

const isRng = (r: Randomness): r is Rng.Rng => typeof (r as Rng.Rng).random === "function"

/**
 * A function of (draws, image): writes the 0/1 patch choice of one image into `out[at … at+N)`, reading
 * its draws from `draws[at …]` (N per image). `image` is only built for the semantic strategy.
 */
const choose = (
  config: MaskingConfig,
  grid: PatchGrid,
  draws: Float64Array,
  image: () => ImageArray,
  out: Uint8Array,
  at: number
): void => {
  const n = grid.count
  switch (config.strategy) {
    case "random":
      for (let i = 0; i < n; i++) out[at + i] = draws[at + i]! < config.prob ? 1 : 0
      return
    case "full":
      out.fill(1, at, at + n)
      return
    case "exact":
      // The k smallest draws: a uniformly random k-subset, and the same draws as `random` would use.
      return markTop(out, at, n, Math.round(config.prob * n), (i) => -draws[at + i]!)
    case "semantic": {
      const scores = (config.saliency ?? localContrast)(image(), grid)
      if (scores.length !== n) {
        throw new MaskingError(`saliency returned ${scores.length} scores for a ${grid.rows}×${grid.cols} grid of ${n} patches`)
      }
      for (let i = 0; i < n; i++) {
        if (!Number.isFinite(scores[i])) throw new MaskingError(`saliency score of patch ${i} is ${scores[i]}, not finite`)
      }
      // k = ⌊p·N⌋ patches: the paper's ⌊p·(N−1)⌋ counts DINOv2's CLS token in N. 1e-9 absorbs 0.29·100 = 28.999….
      return markTop(out, at, n, Math.floor(config.prob * n + 1e-9), (i) => scores[i]!)
    }
  }
}

/** Sets out[at + i] = 1 for the k indices i of highest score (ties: lower index first), 0 for the others. */
const markTop = (out: Uint8Array, at: number, n: number, k: number, score: (i: number) => number): void => {
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => score(b) - score(a) || a - b)
  out.fill(0, at, at + n)
  for (let j = 0; j < k; j++) out[at + order[j]!] = 1
}

/**
 * Chooses the patches of one image without touching its pixels: a `[rows, cols]` 0/1 mask. For
 * `random`, `exact` and `full` it depends on the draws (and the shape) alone; `semantic` reads the image.
 *
 * @example
 * const img = { data: new Uint8Array(30 * 40 * 3), shape: [30, 40, 3] }
 * Array.from(selectPatches(img, defaults, [0.19, 0.62, 0.44, 0.79, 0.78, 0.27, 0.28, 0.80, 0.96]).data)
 * // => [1, 0, 1, 0, 0, 1, 1, 0, 0]
 *
 * @category masking
 */
export const selectPatches = (image: ImageArray, config: MaskingConfig, randomness?: Randomness): PatchMask => {
  const dims = imageDims(image, false)
  const grid = gridOf(dims, validateConfig(config))
  const draws =
    randomness !== undefined && isRng(randomness)
      ? Float64Array.from({ length: drawsPerImage(config, grid) }, () => randomness.random())
      : drawsFor({ ...config, fill: "zero" }, grid, 1, randomness) // no pixels filled: the fill needs nothing
  const out = new Uint8Array(grid.count)
  choose(config, grid, draws, () => image, out, 0)
  return { data: out, shape: [grid.rows, grid.cols] }
}

const gridOf = (dims: Dims, config: MaskingConfig): PatchGrid => patchGrid(dims.height, dims.width, config.patchSize)

/** All the uniform draws a batch needs, validated, in consumption order. */
const drawsFor = (config: MaskingConfig, grid: PatchGrid, batch: number, randomness: Randomness | undefined): Float64Array => {
  const perImage = drawsPerImage(config, grid)
  const total = perImage * batch
  if (randomness === undefined) {
    if (total > 0) throw new MaskingError(`strategy "${config.strategy}" needs ${total} uniform draws or an Rng, got neither`)
    if (config.fill === "noise") throw new MaskingError(`fill "noise" needs an Rng for its normal draws, got none`)
    return new Float64Array(0)
  }
  if (isRng(randomness)) return new Float64Array(0) // drawn image by image, interleaved with noise
  if (config.fill === "noise") {
    throw new MaskingError(`fill "noise" needs an Rng for its normal draws; explicit uniform draws only cover the patch choice`)
  }
  if (randomness.length !== total) {
    throw new MaskingError(
      `strategy "${config.strategy}" on ${batch} image(s) of ${grid.rows}×${grid.cols} patches needs ${total} uniform draws, got ${randomness.length}`
    )
  }
  const draws = Float64Array.from(randomness)
  for (let i = 0; i < total; i++) {
    if (!(draws[i]! >= 0 && draws[i]! < 1)) throw new MaskingError(`uniform draw ${i} is ${draws[i]}, not in [0, 1)`)
  }
  return draws
}

/**
 * Overwrites the masked patches of one image in place: the image starts at `base` in both `out` (the
 * copy being masked) and `src` (the untouched original, read by the mean and noise fills); its patch
 * mask starts at `maskAt` in `mask`.
 */
const fillPatches = (
  out: PixelArray,
  src: PixelArray,
  base: number,
  dims: Dims,
  grid: PatchGrid,
  mask: Uint8Array,
  maskAt: number,
  config: MaskingConfig,
  rng: Rng.Rng | undefined
): void => {
  if (config.fill === "zero") return zeroPatches(out, base, dims, grid, mask, maskAt)
  const { width: w, channels: ch } = dims
  const { patchSize: s, rows, cols, height: h } = grid
  const rowLen = w * ch
  const colour = config.fill === "mean" ? meanRow(src, base, dims) : undefined
  const scale = config.noiseStd * maxValue(src)
  for (let r = 0; r < rows; r++) {
    const y0 = r * s
    const y1 = Math.min(y0 + s, h)
    const m = maskAt + r * cols
    let c = 0
    while (c < cols) {
      if (mask[m + c] === 0) {
        c++
        continue
      }
      let c1 = c + 1
      while (c1 < cols && mask[m + c1] === 1) c1++ // a run of masked patches: one call per pixel row
      const a = base + c * s * ch
      const b = base + Math.min(c1 * s, w) * ch
      if (colour !== undefined) {
        const piece = colour.subarray(a - base, b - base)
        for (let y = y0 * rowLen; y < y1 * rowLen; y += rowLen) out.set(piece, a + y)
      } else {
        addNoise(out, src, y0, y1, rowLen, a, b, scale, rng!)
      }
      c = c1
    }
  }
}

/**
 * The zero fill with as few `fill` calls as possible (each costs about as much as copying 200 bytes): the
 * masked runs of a band repeat on each of its pixel rows, and consecutive runs that meet in memory — a run
 * reaching the right edge followed by one starting at the left edge of the next row, or whole masked
 * bands — become one call.
 */
const zeroPatches = (out: PixelArray, base: number, dims: Dims, grid: PatchGrid, mask: Uint8Array, maskAt: number): void => {
  const { width: w, channels: ch } = dims
  const { patchSize: s, rows, cols, height: h } = grid
  const rowLen = w * ch
  const runs: Array<number> = [] // [a0, b0, a1, b1, …]: the band's masked runs as offsets within a pixel row
  let start = 0
  let end = 0
  for (let r = 0; r < rows; r++) {
    runs.length = 0
    const m = maskAt + r * cols
    for (let c = 0; c < cols; c++) {
      if (mask[m + c] === 0) continue
      let c1 = c + 1
      while (c1 < cols && mask[m + c1] === 1) c1++
      runs.push(c * s * ch, Math.min(c1 * s, w) * ch)
      c = c1
    }
    if (runs.length === 0) continue
    for (let y = r * s, y1 = Math.min(y + s, h); y < y1; y++) {
      const row = base + y * rowLen
      for (let k = 0; k < runs.length; k += 2) {
        const a = row + runs[k]!
        if (a === end) end = row + runs[k + 1]!
        else {
          if (end > start) out.fill(0, start, end)
          start = a
          end = row + runs[k + 1]!
        }
      }
    }
  }
  if (end > start) out.fill(0, start, end)
}

/** One pixel row of the per-channel mean colour of the image at `base`, in the image's own storage type. */
const meanRow = (src: PixelArray, base: number, dims: Dims): PixelArray => {
  const { width: w, channels: ch } = dims
  const size = dims.height * w * ch
  const sums = new Float64Array(ch)
  for (let i = base; i < base + size; i += ch) for (let c = 0; c < ch; c++) sums[c]! += src[i + c]!
  const pixels = size / ch
  const round = !(src instanceof Float32Array)
  const row = new (src.constructor as new (n: number) => PixelArray)(w * ch)
  for (let c = 0; c < ch; c++) {
    const m = sums[c]! / pixels
    const v = round ? Math.round(m) : m
    for (let x = 0; x < w; x++) row[x * ch + c] = v
  }
  return row
}

const addNoise = (
  out: PixelArray,
  src: PixelArray,
  y0: number,
  y1: number,
  rowLen: number,
  a: number,
  b: number,
  scale: number,
  rng: Rng.Rng
): void => {
  const hi = maxValue(src)
  const round = !(src instanceof Float32Array)
  for (let y = y0; y < y1; y++) {
    for (let i = y * rowLen + a; i < y * rowLen + b; i++) {
      const v = Math.min(hi, Math.max(0, src[i]! + scale * rng.normal()))
      out[i] = round ? Math.round(v) : v
    }
  }
}

/**
 * The masked image and which patches were masked.
 *
 * @category models
 */
export interface Masked<A extends PixelArray = PixelArray> {
  /** Same shape and storage type as the input. */
  readonly image: ImageArray<A>
  /** `[rows, cols]` for one image, `[B, rows, cols]` for a batch. */
  readonly patchMask: PatchMask
}

/**
 * Masks a batch `[B, H, W]` or `[B, H, W, C]`: one independent mask per image (per prompt: the G
 * rollouts of a prompt share its masked image, so mask the prompts, then repeat). Draws are taken image
 * after image; with an {@link Rng} and the `noise` fill, each image's normal draws follow its uniform ones.
 *
 * Cost: one copy of the batch, then one `fill`/`set` per pixel row of each run of masked patches (the zero
 * fill merges runs that meet in memory).
 *
 * @example
 * const batch = { data: new Uint8Array(80 * 28 * 56), shape: [80, 28, 56, 1] }
 * const { image, patchMask } = maskBatch(batch, defaults, Mt19937.seed(0))
 * patchMask.shape // => [80, 2, 4]
 *
 * @category masking
 */
export const maskBatch = <A extends PixelArray>(
  batch: ImageArray<A>,
  config: MaskingConfig,
  randomness?: Randomness
): Masked<A> => {
  validateConfig(config)
  const dims = imageDims(batch, true)
  const grid = gridOf(dims, config)
  const given = drawsFor(config, grid, dims.batch, randomness)
  const rng = randomness !== undefined && isRng(randomness) ? randomness : undefined
  const perImage = drawsPerImage(config, grid)
  const size = dims.height * dims.width * dims.channels
  const out = batch.data.slice() as A
  const mask = new Uint8Array(dims.batch * grid.count)
  const draws = rng === undefined ? given : new Float64Array(dims.batch * perImage)
  const shape = batch.shape.slice(1) // one image's shape, for the saliency
  for (let b = 0; b < dims.batch; b++) {
    const at = b * grid.count // == b * perImage whenever draws are read
    if (rng !== undefined) for (let i = 0; i < perImage; i++) draws[at + i] = rng.random()
    const image = () => ({ data: batch.data.subarray(b * size, (b + 1) * size), shape })
    choose(config, grid, draws, image, mask, at)
    fillPatches(out, batch.data, b * size, dims, grid, mask, at, config, rng)
  }
  return { image: { data: out, shape: [...batch.shape] }, patchMask: { data: mask, shape: [dims.batch, grid.rows, grid.cols] } }
}

/**
 * Masks one image `[H, W]` or `[H, W, C]`, as the reference's `random_patch_blackening` does with the
 * default config: the draws are its successive `np.random.rand()` values.
 *
 * @example
 * const img = { data: new Uint8Array(28 * 28).fill(200), shape: [28, 28] }
 * const { image, patchMask } = maskImage(img, defaults, [0.08, 0.78, 0.44, 0.72])
 * Array.from(patchMask.data) // => [1, 0, 1, 0]
 * image.data[0] // => 0
 * image.data[14] // => 200
 *
 * @category masking
 */
export const maskImage = <A extends PixelArray>(
  image: ImageArray<A>,
  config: MaskingConfig,
  randomness?: Randomness
): Masked<A> => {
  imageDims(image, false)
  const r = maskBatch({ data: image.data, shape: [1, ...image.shape] }, config, randomness)
  return { image: { data: r.image.data, shape: [...image.shape] }, patchMask: { data: r.patchMask.data, shape: r.patchMask.shape.slice(1) } }
}

/**
 * Applies a given patch mask (`[rows, cols]`, e.g. from {@link selectPatches} or from a log) to one image
 * with the config's fill. Needs an {@link Rng} for the `noise` fill only.
 *
 * @example
 * applyPatchMask(img, { data: Uint8Array.of(1, 0, 0, 1), shape: [2, 2] }, defaults)
 *
 * @category masking
 */
export const applyPatchMask = <A extends PixelArray>(
  image: ImageArray<A>,
  patchMask: PatchMask,
  config: MaskingConfig,
  rng?: Rng.Rng
): ImageArray<A> => {
  validateConfig(config)
  const dims = imageDims(image, false)
  const grid = gridOf(dims, config)
  if (patchMask.shape.length !== 2 || patchMask.shape[0] !== grid.rows || patchMask.shape[1] !== grid.cols || patchMask.data.length !== grid.count) {
    throw new MaskingError(
      `patchMask has shape [${patchMask.shape.join(", ")}] (${patchMask.data.length} values) but the ${dims.height}×${dims.width} image with patchSize ${config.patchSize} has a ${grid.rows}×${grid.cols} grid`
    )
  }
  if (config.fill === "noise" && rng === undefined) throw new MaskingError(`fill "noise" needs an Rng for its normal draws, got none`)
  const out = image.data.slice() as A
  fillPatches(out, image.data, 0, dims, grid, patchMask.data.map((v) => (v === 0 ? 0 : 1)), 0, config, rng)
  return { data: out, shape: [...image.shape] }
}
