/**
 * Saliency scores per patch for the semantic-aware strategy: the patches with the highest scores are
 * masked first.
 *
 * The paper (App. G.2) scores patches by the DINOv2 self-attention they receive; a caller can pass any
 * such score (for instance the policy's own attention to image patches) as a {@link Saliency} function.
 * {@link localContrast} is the image-only score used when none is given.
 *
 * @since 0.1.0
 */
import type { ImageArray, PatchGrid } from "./Image.js"

/**
 * Scores the patches of one image: returns `grid.count` finite numbers in row-major patch order
 * (higher = more salient = masked first).
 *
 * @example
 * const attention = new Float32Array(9) // e.g. the policy's attention to each patch, computed elsewhere
 * const saliency: Saliency = (_image, grid) => attention.subarray(0, grid.count)
 *
 * @category masking
 */
export type Saliency = (image: ImageArray, grid: PatchGrid) => ArrayLike<number>

/**
 * Local contrast: the standard deviation of the values of each patch (all channels pooled). Flat
 * regions (background, borders) score 0; edges and texture, where the content of a figure or a digit
 * usually is, score high. Partial edge patches use only their own pixels.
 *
 * @example
 * const img = { data: Uint8Array.from([0, 255, 7, 7]), shape: [1, 4] }
 * Array.from(localContrast(img, patchGrid(1, 4, 2))) // => [127.5, 0]
 *
 * @category masking
 */
export const localContrast: Saliency = (image, grid) => {
  const { data } = image
  const { width, height, patchSize: s, cols } = grid
  const channels = image.shape[2] ?? 1
  const sum = new Float64Array(grid.count)
  const sumSq = new Float64Array(grid.count)
  const n = new Float64Array(grid.count)
  for (let y = 0; y < height; y++) {
    const rowBase = ((y / s) | 0) * cols
    for (let x = 0; x < width; x++) {
      const p = rowBase + ((x / s) | 0)
      const base = (y * width + x) * channels
      for (let c = 0; c < channels; c++) {
        const v = data[base + c]!
        sum[p]! += v
        sumSq[p]! += v * v
      }
      n[p]! += channels
    }
  }
  const out = new Float64Array(grid.count)
  for (let p = 0; p < grid.count; p++) {
    const mean = sum[p]! / n[p]!
    out[p] = Math.sqrt(Math.max(0, sumSq[p]! / n[p]! - mean * mean))
  }
  return out
}
