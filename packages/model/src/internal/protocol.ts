/**
 * Messages between the main thread and a data-parallel worker (see Parallel.ts). Tensors travel as
 * typed arrays with their shape.
 */
import * as tf from "@tensorflow/tfjs"
import type { PapoLoss } from "@papo/loss"
import type { ModelConfig } from "../Config.js"
import type { AdamWConfig, AdamWState } from "../Optimizer.js"
import type { Xoshiro128State } from "@papo/random"
import type { SampleOptions } from "../Sampling.js"

export interface Wire {
  readonly shape: ReadonlyArray<number>
  readonly dtype: "float32" | "int32"
  readonly data: Float32Array | Int32Array
}

export const toWire = (t: tf.Tensor): Wire => ({
  shape: t.shape,
  dtype: t.dtype === "int32" ? "int32" : "float32",
  data: t.dataSync() as Float32Array | Int32Array
})

export const fromWire = (w: Wire): tf.Tensor => tf.tensor(w.data, [...w.shape], w.dtype)

export interface WireBatch {
  readonly images: Wire
  readonly promptIds: Wire
  readonly responseIds: Wire
}

export interface WireLoss {
  readonly oldLogProbs: Wire
  readonly advantages: Wire
  readonly responseMask: Wire
  readonly refLogProbs: Wire | null
  readonly maskedLogProbs: Wire | null
  readonly config: PapoLoss.LossConfig
  /** This part's share of the whole batch's loss normalizer. */
  readonly share: number
  readonly temperature: number
}

export type Request =
  | {
    readonly kind: "init"
    readonly config: ModelConfig
    readonly weights: Record<string, Float32Array>
    readonly referenceWeights: Record<string, Float32Array> | null
    readonly optimizer: { readonly config: AdamWConfig; readonly state: AdamWState } | null
  }
  | { readonly kind: "sample"; readonly images: Wire; readonly promptIds: Wire; readonly options: SampleOptions; readonly rng: Xoshiro128State }
  | { readonly kind: "logProbs"; readonly model: "policy" | "reference"; readonly batch: WireBatch; readonly temperature: number }
  | { readonly kind: "gradients"; readonly batch: WireBatch; readonly loss: WireLoss }
  | { readonly kind: "update"; readonly grads: Record<string, Float32Array> }
  | { readonly kind: "weights" }
  | { readonly kind: "stop" }
