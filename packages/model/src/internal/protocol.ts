/**
 * Messages between the main thread and a data-parallel worker (see Parallel.ts). Tensors travel as
 * typed arrays with their shape.
 */
import * as tf from "@tensorflow/tfjs"
import type { ModelConfig } from "../Config.js"
import type { AdamWConfig, AdamWState } from "../Optimizer.js"
import type { Xoshiro128State } from "@papo/random"
import type { SampleOptions } from "../Sampling.js"
import type { LossSpec } from "./update.js"

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

/** One part of a micro-batch for the worker: its rows of the batch and of every loss input, and its share. */
export interface WirePart {
  readonly batch: WireBatch
  readonly inputs: Readonly<Record<string, Wire | null>>
  readonly share: number
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
  | {
    readonly kind: "gradients"
    readonly parts: ReadonlyArray<WirePart>
    readonly loss: LossSpec
    /** Micro-batches of the whole mini-batch (the gradient-accumulation divisor). */
    readonly count: number
    readonly temperature: number
  }
  | { readonly kind: "update"; readonly grads: Record<string, Float32Array> }
  | { readonly kind: "weights" }
  | { readonly kind: "stop" }
