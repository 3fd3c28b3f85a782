// Shared fixtures for the model tests: a wasm backend and tiny random batches.
import * as tf from "@tensorflow/tfjs"
import { initBackend } from "@papo/backend"
import { Config } from "../src/index.js"
import { Xoshiro128 } from "@papo/random"

export const setup = async (): Promise<void> => {
  await initBackend("wasm")
}

/** `n` random images and prompts for a config. */
export const randomBatch = (c: Config.ModelConfig, n: number, promptLength: number, seed: number): { images: tf.Tensor4D; promptIds: tf.Tensor2D } => {
  const rng = new Xoshiro128(seed)
  const px = new Float32Array(n * c.imageHeight * c.imageWidth * c.imageChannels).map(() => rng.random())
  const ids = new Int32Array(n * promptLength).map(() => rng.nextUint32() % c.vocabSize)
  return {
    images: tf.tensor4d(px, [n, c.imageHeight, c.imageWidth, c.imageChannels]),
    promptIds: tf.tensor2d(ids, [n, promptLength], "int32")
  }
}
