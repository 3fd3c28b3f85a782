/**
 * Images as flat typed arrays with an explicit C-order shape, and the patch grid laid over them.
 *
 * A single image has shape `[H, W]` (grayscale) or `[H, W, C]` (C = 3 RGB, 4 RGBA, …); a batch has shape
 * `[B, H, W]` or `[B, H, W, C]`. Pixels are stored row-major, channels innermost, exactly as numpy's
 * C-order bytes of the reference's `np.array(pil_image)`.
 *
 * @since 0.1.0
 */

/**
 * The pixel storage types: 8-bit images (`Uint8Array`, `Uint8ClampedArray`), integer tensors
 * (`Int32Array`, as tfjs stores `int32`) and float images (`Float32Array`).
 *
 * @category models
 */
export type PixelArray = Uint8Array | Uint8ClampedArray | Int32Array | Float32Array

/**
 * Pixel data and its C-order shape.
 *
 * @example
 * const img: ImageArray = { data: new Uint8Array(28 * 28), shape: [28, 28] }
 *
 * @category models
 */
export interface ImageArray<A extends PixelArray = PixelArray> {
  readonly data: A
  readonly shape: ReadonlyArray<number>
}

/**
 * The grid of `patchSize`-pixel squares laid from the top-left corner: `rows = ⌈H/s⌉`, `cols = ⌈W/s⌉`,
 * the right and bottom patches partial when s does not divide the side.
 *
 * @category models
 */
export interface PatchGrid {
  readonly height: number
  readonly width: number
  readonly patchSize: number
  readonly rows: number
  readonly cols: number
  /** rows · cols: N, the number of patches and of uniform draws per image for the random modes. */
  readonly count: number
}

/**
 * A 0/1 mask per patch, row-major: shape `[rows, cols]` for one image, `[B, rows, cols]` for a batch.
 * 1 means the patch was masked.
 *
 * @category models
 */
export interface PatchMask {
  readonly data: Uint8Array
  readonly shape: ReadonlyArray<number>
}

/**
 * An error naming the argument at fault and the values involved.
 *
 * @category errors
 */
export class MaskingError extends Error {
  override readonly name = "MaskingError"
}

/**
 * Validates `patchSize` and lays the grid over an `height × width` image.
 *
 * @example
 * patchGrid(30, 40, 14) // => { height: 30, width: 40, patchSize: 14, rows: 3, cols: 3, count: 9 }
 *
 * @category constructors
 */
export const patchGrid = (height: number, width: number, patchSize: number): PatchGrid => {
  if (!Number.isInteger(patchSize) || patchSize <= 0) {
    throw new MaskingError(`patchSize must be a positive integer, got ${patchSize}`)
  }
  const rows = Math.ceil(height / patchSize)
  const cols = Math.ceil(width / patchSize)
  return { height, width, patchSize, rows, cols, count: rows * cols }
}

/** The dimensions of an image or of a batch, read from its shape. */
export interface Dims {
  readonly batch: number
  readonly height: number
  readonly width: number
  readonly channels: number
}

const shapeText = (shape: ReadonlyArray<number>): string => `[${shape.join(", ")}]`

/**
 * Checks that `shape` is `[H, W]`/`[H, W, C]` (or, with `batched`, `[B, H, W]`/`[B, H, W, C]`) of
 * positive integers and that `data` holds exactly their product of values.
 *
 * @example
 * imageDims({ data: new Uint8Array(12), shape: [2, 2, 3] }, false) // => { batch: 1, height: 2, width: 2, channels: 3 }
 *
 * @category constructors
 */
export const imageDims = (image: ImageArray, batched: boolean): Dims => {
  const { shape, data } = image
  const ranks = batched ? [3, 4] : [2, 3]
  const what = batched ? "a batch shape [B, H, W] or [B, H, W, C]" : "an image shape [H, W] or [H, W, C]"
  if (!ranks.includes(shape.length)) throw new MaskingError(`expected ${what}, got ${shapeText(shape)}`)
  if (shape.some((d) => !Number.isInteger(d) || d <= 0)) {
    throw new MaskingError(`shape ${shapeText(shape)} must hold positive integers`)
  }
  const size = shape.reduce((a, b) => a * b, 1)
  if (data.length !== size) {
    throw new MaskingError(`shape ${shapeText(shape)} needs ${size} values, but the data holds ${data.length}`)
  }
  const s = batched ? shape : [1, ...shape]
  return { batch: s[0]!, height: s[1]!, width: s[2]!, channels: s[3] ?? 1 }
}

/**
 * The largest pixel value of a storage type: 255 for the integer types, 1 for `Float32Array` (float
 * images are taken to lie in [0, 1]). Used to scale and clamp the noise fill.
 *
 * @category models
 */
export const maxValue = (data: PixelArray): number => (data instanceof Float32Array ? 1 : 255)
