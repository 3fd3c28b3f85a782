/**
 * Small tensor helpers shared by the loss modules. Not exported from the package.
 */
import * as tf from "@tensorflow/tfjs"

/** Throws `Error in <op>: ...` unless every tensor has the shape of the first. */
export const assertSameShape = (op: string, tensors: Readonly<Record<string, tf.Tensor>>): void => {
  const entries = Object.entries(tensors)
  const [firstName, first] = entries[0] ?? []
  if (first === undefined) return
  for (const [name, t] of entries.slice(1)) {
    if (t.shape.length !== first.shape.length || t.shape.some((d, i) => d !== first.shape[i])) {
      throw new Error(
        `Error in ${op}: ${name} has shape [${t.shape.join(", ")}] but ${firstName} has shape [${first.shape.join(", ")}]`
      )
    }
  }
}

/** Throws unless `t` has the given rank. */
export const assertRank = (op: string, name: string, t: tf.Tensor, rank: number): void => {
  if (t.rank !== rank) {
    throw new Error(`Error in ${op}: ${name} must have rank ${rank}, got shape [${t.shape.join(", ")}]`)
  }
}

/** Identity forward, zero gradient: PyTorch's `.detach()` (tfjs has no stop-gradient op). */
export const stopGradient: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor) => ({
  value: x.clone(),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy)
})) as never) as (x: tf.Tensor) => tf.Tensor

/**
 * |x| with PyTorch's subgradient sign(0) = 0 (tfjs's own Abs gradient gives −1 at 0).
 */
export const abs: (x: tf.Tensor) => tf.Tensor = tf.customGrad(((x: tf.Tensor, save: tf.GradSaveFunc) => {
  save([x])
  return { value: tf.abs(x), gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => tf.mul(dy, tf.sign(saved[0]!)) }
}) as never) as (x: tf.Tensor) => tf.Tensor

/** The mask as float32 (callers may pass int32 or bool masks). */
export const asFloat = (t: tf.Tensor): tf.Tensor => (t.dtype === "float32" ? t : tf.cast(t, "float32"))

/**
 * `tf.tidy` typed for results that hold `null` or plain numbers next to tensors (tfjs's own signature
 * refuses `null`, which tidy handles at run time: it keeps every tensor reachable from the result).
 */
export const tidy = <T>(f: () => T): T => tf.tidy(f as () => tf.TensorContainer) as T
