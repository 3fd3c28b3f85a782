/**
 * The masking of {@link Masking} on TensorFlow.js tensors: `[H, W]`, `[H, W, C]` or a batch
 * `[B, H, W, C]`, dtype `int32` (8-bit pixel values, as `tf.browser.fromPixels` gives) or `float32`
 * (values in [0, 1]). Reads the tensor once, masks the typed array, builds new tensors.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { MaskingError } from "./Image.js"
import { maskBatch, maskImage, type MaskingConfig, type Randomness } from "./Masking.js"

/**
 * Masks an image tensor (rank 2 or 3) or a batch (rank 4, one mask per image). Returns the masked
 * tensor (same shape and dtype) and a `bool` patch mask `[rows, cols]` or `[B, rows, cols]`. The input
 * is not disposed.
 *
 * @example
 * const { image, patchMask } = maskTensor(tf.ones([28, 28], "int32"), defaults, [0.1, 0.9, 0.9, 0.1])
 * patchMask.arraySync() // => [[true, false], [false, true]]
 *
 * @category masking
 */
export const maskTensor = (
  image: tf.Tensor,
  config: MaskingConfig,
  randomness?: Randomness
): { readonly image: tf.Tensor; readonly patchMask: tf.Tensor } => {
  if (image.dtype !== "int32" && image.dtype !== "float32") {
    throw new MaskingError(`maskTensor: image dtype must be int32 or float32, got ${image.dtype}`)
  }
  if (image.rank < 2 || image.rank > 4) {
    throw new MaskingError(`maskTensor: expected shape [H, W], [H, W, C] or [B, H, W, C], got [${image.shape.join(", ")}]`)
  }
  const pixels = { data: image.dataSync() as Int32Array | Float32Array, shape: image.shape }
  const r = image.rank === 4 ? maskBatch(pixels, config, randomness) : maskImage(pixels, config, randomness)
  return {
    image: tf.tensor(r.image.data, image.shape, image.dtype),
    patchMask: tf.tensor(r.patchMask.data, [...r.patchMask.shape], "bool")
  }
}
