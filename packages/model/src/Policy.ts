/**
 * The vision-language decoder policy: parameters, a frozen reference copy, weights in and out, and the
 * per-token log-probs of given responses (with or without gradient).
 *
 * A batch is `images [N, H, W, C]` (float32), `promptIds [N, Tp]` and `responseIds [N, Tr]` (int32). All
 * prompts of a batch have the same length: left-pad them with the tokenizer's PAD id. There is no attention
 * mask: PAD tokens are ordinary inputs the model learns to ignore. Rows may carry different images, so the
 * old-policy pass on the original images and the pass on the masked images can run as one batch.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { Aggregation, Entropy } from "@papo/loss"
import { numPatches, patchDim, validateConfig, type ModelConfig } from "./Config.js"
import { Xoshiro128 } from "@papo/random"
import { tidy } from "./internal/ops.js"
import { blocks, embedSequence, head, lastBlockAt, type Params } from "./internal/transformer.js"

/**
 * A policy: its config and its named parameters (see the README's tensor table). A reference copy has
 * `trainable: false` and is never touched by an optimizer.
 *
 * @category models
 */
export interface Policy {
  readonly config: ModelConfig
  readonly params: Readonly<Record<string, tf.Variable>>
  readonly trainable: boolean
}

/**
 * Name and shape of each parameter, in checkpoint order. Matrices are stored `[in, out]` (the transpose of
 * `torch.nn.Linear.weight`).
 *
 * @example
 * parameterShapes(configs.tiny)[0] // => { name: "patch_embed.weight", shape: [16, 16] }
 *
 * @category models
 */
export const parameterShapes = (c: ModelConfig): ReadonlyArray<{ readonly name: string; readonly shape: ReadonlyArray<number> }> => {
  const d = c.dModel
  const out: Array<{ name: string; shape: Array<number> }> = [
    { name: "patch_embed.weight", shape: [patchDim(c), d] },
    { name: "patch_embed.bias", shape: [d] },
    { name: "image_pos_embed", shape: [numPatches(c), d] },
    { name: "token_embed", shape: [c.vocabSize, d] },
    { name: "text_pos_embed", shape: [c.maxPromptLength + c.maxResponseLength, d] }
  ]
  for (let i = 0; i < c.nLayers; i++) {
    const b = `blocks.${i}`
    out.push(
      { name: `${b}.ln1.weight`, shape: [d] },
      { name: `${b}.ln1.bias`, shape: [d] },
      { name: `${b}.attn.qkv.weight`, shape: [d, 3 * d] },
      { name: `${b}.attn.qkv.bias`, shape: [3 * d] },
      { name: `${b}.attn.proj.weight`, shape: [d, d] },
      { name: `${b}.attn.proj.bias`, shape: [d] },
      { name: `${b}.ln2.weight`, shape: [d] },
      { name: `${b}.ln2.bias`, shape: [d] },
      { name: `${b}.mlp.fc.weight`, shape: [d, c.dMlp] },
      { name: `${b}.mlp.fc.bias`, shape: [c.dMlp] },
      { name: `${b}.mlp.proj.weight`, shape: [c.dMlp, d] },
      { name: `${b}.mlp.proj.bias`, shape: [d] }
    )
  }
  out.push({ name: "ln_f.weight", shape: [d] }, { name: "ln_f.bias", shape: [d] }, { name: "lm_head.weight", shape: [d, c.vocabSize] })
  return out
}

let variableCounter = 0
// tfjs variable names are global: suffix a counter so policies and their references can coexist.
const uniqueName = (name: string): string => `${name}#${variableCounter++}`

const initValues = (c: ModelConfig, name: string, size: number, rng: Xoshiro128): Float32Array => {
  const v = new Float32Array(size)
  if (name.endsWith(".bias")) return v
  if (/ln[12_]\w*\.weight$|ln_f\.weight$/.test(name)) return v.fill(1)
  // GPT-2 init: N(0, 0.02), residual projections scaled by 1/√(2L).
  const std = /\.(attn|mlp)\.proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * c.nLayers) : 0.02
  for (let i = 0; i < size; i++) v[i] = std * rng.normal()
  return v
}

/**
 * A new trainable policy with weights drawn from `seed` (same config and seed → same weights).
 *
 * @example
 * const policy = create(configs.tiny, 0)
 * Object.keys(policy.params).length // => 19
 *
 * @category constructors
 */
export const create = (config: ModelConfig, seed: number): Policy => {
  validateConfig(config)
  const rng = new Xoshiro128(seed)
  const params: Record<string, tf.Variable> = {}
  for (const { name, shape } of parameterShapes(config)) {
    const size = shape.reduce((a, b) => a * b, 1)
    const values = initValues(config, name, size, rng)
    params[name] = tf.tidy(() => tf.variable(tf.tensor(values, [...shape]), true, uniqueName(name)))
  }
  return { config, params, trainable: true }
}

/**
 * A frozen copy (the reference model): same weights, `trainable: false`.
 *
 * @category constructors
 */
export const reference = (policy: Policy): Policy => {
  const params: Record<string, tf.Variable> = {}
  for (const [name, v] of Object.entries(policy.params)) params[name] = tf.variable(v, false, uniqueName(name))
  return { config: policy.config, params, trainable: false }
}

/**
 * The weights as plain arrays, in {@link parameterShapes} order (a copy).
 *
 * @category models
 */
export const getWeights = (policy: Policy): Record<string, Float32Array> => {
  const out: Record<string, Float32Array> = {}
  for (const { name } of parameterShapes(policy.config)) out[name] = policy.params[name]!.dataSync() as Float32Array
  return out
}

/**
 * Replaces every weight. All names and sizes are checked first; on any mismatch nothing is changed and
 * the error lists what is wrong.
 *
 * @category models
 */
export const setWeights = (policy: Policy, weights: Readonly<Record<string, Float32Array>>): void => {
  const problems: Array<string> = []
  const shapes = parameterShapes(policy.config)
  const expected = new Set(shapes.map((s) => s.name))
  for (const { name, shape } of shapes) {
    const w = weights[name]
    const size = shape.reduce((a, b) => a * b, 1)
    if (w === undefined) problems.push(`missing "${name}"`)
    else if (w.length !== size) problems.push(`"${name}" has ${w.length} values, expected ${size} ([${shape.join(", ")}])`)
  }
  for (const name of Object.keys(weights)) if (!expected.has(name)) problems.push(`unexpected "${name}"`)
  if (problems.length > 0) throw new Error(`setWeights: weights do not match the config: ${problems.join("; ")}`)
  for (const { name, shape } of shapes) {
    tf.tidy(() => policy.params[name]!.assign(tf.tensor(weights[name]!, [...shape])))
  }
}

/**
 * Frees the policy's variables.
 *
 * @category constructors
 */
export const dispose = (policy: Policy): void => {
  for (const v of Object.values(policy.params)) v.dispose()
}

/**
 * One batch for {@link logProbs}: every row has its own image, prompt and response.
 *
 * @category models
 */
export interface Batch {
  /** `[N, H, W, C]` float32. */
  readonly images: tf.Tensor
  /** `[N, Tp]` int32, left-padded with PAD. */
  readonly promptIds: tf.Tensor
  /** `[N, Tr]` int32 (PAD after a stop token). */
  readonly responseIds: tf.Tensor
}

const checkBatch = (op: string, c: ModelConfig, b: Batch): void => {
  const { images, promptIds, responseIds } = b
  const n = images.shape[0]
  const want = [n, c.imageHeight, c.imageWidth, c.imageChannels]
  if (images.rank !== 4 || images.shape.some((s, i) => s !== want[i])) {
    throw new Error(`Error in ${op}: images must be [N, ${c.imageHeight}, ${c.imageWidth}, ${c.imageChannels}], got [${images.shape.join(", ")}]`)
  }
  if (promptIds.rank !== 2 || promptIds.shape[0] !== n || promptIds.shape[1]! > c.maxPromptLength) {
    throw new Error(`Error in ${op}: promptIds must be [${n}, ≤ ${c.maxPromptLength}], got [${promptIds.shape.join(", ")}]`)
  }
  if (responseIds.rank !== 2 || responseIds.shape[0] !== n || responseIds.shape[1]! > c.maxResponseLength || responseIds.shape[1]! < 1) {
    throw new Error(`Error in ${op}: responseIds must be [${n}, 1 … ${c.maxResponseLength}], got [${responseIds.shape.join(", ")}]`)
  }
}

/**
 * Logits `[N, Tr, V]` of the positions that predict the response tokens (the last block's MLP, the
 * final LayerNorm and the LM head run on those positions only). Differentiable; use inside `applyGradients`'s loss for SFT.
 *
 * @category math
 */
export const responseLogits = (policy: Policy, batch: Batch): tf.Tensor3D =>
  tidy(() => {
    const c = policy.config
    checkBatch("responseLogits", c, batch)
    const tp = batch.promptIds.shape[1]!, tr = batch.responseIds.shape[1]!
    const text = tf.concat([tf.cast(batch.promptIds, "int32"), tf.cast(batch.responseIds, "int32")], 1)
    const { x: x0, n, t } = embedSequence(policy.params as Params, c, batch.images, text)
    const { x } = blocks(policy.params as Params, { ...c, nLayers: c.nLayers - 1 }, x0, n, t, false) // all blocks but the last
    const start = numPatches(c) + tp - 1 // position whose output predicts responseIds[:, 0]
    const { y: sel } = lastBlockAt(policy.params as Params, c, x, n, t, start, tr) // (N·Tr, d)
    return tf.reshape(head(policy.params as Params, sel), [n, tr, c.vocabSize]) as tf.Tensor3D
  })

/**
 * `log π(responseIds[n, t] | image, prompt, responseIds[n, < t])` at `temperature`: `[N, Tr]`.
 * Differentiable (wasm-safe, via `Entropy.logProbsFromLogits`); outside a gradient tape it is a plain
 * forward pass. Values at PAD positions are computed too; mask them with the response mask.
 *
 * @example
 * const lp = logProbs(policy, { images, promptIds, responseIds }) // (N, Tr), all ≤ 0
 *
 * @category math
 */
export const logProbs = (policy: Policy, batch: Batch, temperature = 1): tf.Tensor2D =>
  tidy(() => Entropy.logProbsFromLogits(responseLogits(policy, batch), batch.responseIds, temperature) as tf.Tensor2D)

/**
 * Supervised fine-tuning loss: the mean negative log-likelihood of the response tokens where
 * `responseMask` is 1 (temperature 1).
 *
 * @category losses
 */
export const sftLoss = (policy: Policy, batch: Batch, responseMask: tf.Tensor): tf.Scalar =>
  tidy(() => tf.neg(Aggregation.maskedMean(logProbs(policy, batch), responseMask)))
