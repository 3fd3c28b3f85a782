/**
 * Batched rollouts with a KV cache: B prompts × G samples each, over `[image][prompt][response]`.
 *
 * One prefill of the prefix per prompt (its keys/values are then repeated for the G samples), then one
 * one-token decode step per new token (under the native kernels one native call each, weights packed once per
 * rollout; on wasm the cache and the one-query attention live in plain arrays). Rows of the result are prompt-major: row `b·G + g` is sample g of
 * prompt b. After a stop token a row emits PAD and its response mask is 0 (the stop token itself is
 * part of the response, mask 1). Sampling reads the logits on the CPU and draws with the caller's
 * {@link Rng}: same weights, inputs, options and generator state → same tokens.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import type { Policy } from "./Policy.js"
import type { Rng } from "@papo/random"
import { tidy } from "./internal/ops.js"
import { numPatches } from "./Config.js"
import { decoder, embedSequence, head, prefill, type Params } from "./internal/transformer.js"

/**
 * Options of {@link sample}.
 *
 * @category configuration
 */
export interface SampleOptions {
  /** G: samples per prompt. */
  readonly groupSize: number
  /** Response length T (≤ the config's `maxResponseLength`); rows that stop early are padded to it. */
  readonly maxNewTokens: number
  /** The PAD id written after a stop token. */
  readonly padId: number
  /** Softmax temperature; 0 means greedy (argmax, no random draw). Default 1. */
  readonly temperature?: number
  /** Nucleus sampling: keep the smallest set of most likely tokens whose probability reaches topP. Default 1 (off). */
  readonly topP?: number
  /** Keep only the topK most likely tokens. Default 0 (off). */
  readonly topK?: number
  /** Token ids that end a response (e.g. EOS). Default none. */
  readonly stopTokens?: ReadonlyArray<number>
}

/**
 * The result of {@link sample}; the caller disposes the tensors.
 *
 * @category models
 */
export interface Rollout {
  /** `[B·G, T]` int32. */
  readonly responseIds: tf.Tensor2D
  /** `[B·G, T]` float32: 1 up to and including the stop token, then 0. */
  readonly responseMask: tf.Tensor2D
  /** Valid tokens per row (the stop token included). */
  readonly lengths: Int32Array
  /** The same ids as a plain array, row-major. */
  readonly ids: Int32Array
  /**
   * Row-major `[B·G, T]` log-probs of the drawn tokens under `softmax(logits / temperature)` over the whole
   * vocabulary (before top-k/top-p; temperature 0 counts as 1), 0 after a stop. Computed from the cached
   * logits; `Policy.logProbs` recomputes them without the cache.
   */
  readonly logProbs: Float32Array
}

/**
 * Token ids by logit, largest first, ties by id: an insertion sort for small vocabularies (a few times faster
 * than `Array.prototype.sort` with a comparator at V ≈ 32, and the same order: both are this one total order).
 */
const byLogit = (logits: ArrayLike<number>): ArrayLike<number> => {
  const v = logits.length
  if (v > 64) return Array.from({ length: v }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b)
  const order = new Int32Array(v)
  for (let i = 0; i < v; i++) {
    const x = logits[i]!
    let j = i
    for (; j > 0 && logits[order[j - 1]!]! < x; j--) order[j] = order[j - 1]!
    order[j] = i
  }
  return order
}

/**
 * Draws one token from `logits` (length V) with temperature / top-k / top-p.
 *
 * @example
 * sampleToken(Float32Array.of(0, 10, 0), { temperature: 0 }, rng) // => 1
 *
 * @category math
 */
export const sampleToken = (
  logits: ArrayLike<number>,
  options: { readonly temperature?: number; readonly topP?: number; readonly topK?: number },
  rng: Rng.Rng
): number => {
  const v = logits.length
  const temperature = options.temperature ?? 1
  if (temperature === 0) {
    let best = 0
    for (let i = 1; i < v; i++) if (logits[i]! > logits[best]!) best = i
    return best
  }
  const order = byLogit(logits)
  return draw(order, scaledExps(logits, logits[order[0]!]!, temperature), options, rng)
}

/** `exp((logits[i] − max) / temperature)` for every i, in id order. */
const scaledExps = (logits: ArrayLike<number>, max: number, temperature: number): Float64Array => {
  const e = new Float64Array(logits.length)
  for (let i = 0; i < e.length; i++) e[i] = Math.exp((logits[i]! - max) / temperature)
  return e
}

/** {@link sampleToken}'s draw at a temperature above 0, from the ids by logit and {@link scaledExps} (with the largest logit as max). */
const draw = (order: ArrayLike<number>, e: Float64Array, options: { readonly topP?: number; readonly topK?: number }, rng: Rng.Rng): number => {
  const v = e.length
  const topK = options.topK ?? 0
  const keep = topK > 0 ? Math.min(topK, v) : v
  const probs = new Float64Array(keep)
  let total = 0
  for (let r = 0; r < keep; r++) {
    probs[r] = e[order[r]!]!
    total += probs[r]!
  }
  const topP = options.topP ?? 1
  let n = keep
  if (topP < 1) {
    let cum = 0
    for (let r = 0; r < keep; r++) {
      cum += probs[r]! / total
      if (cum >= topP) {
        n = r + 1
        break
      }
    }
    total = 0
    for (let r = 0; r < n; r++) total += probs[r]!
  }
  let u = rng.random() * total
  for (let r = 0; r < n; r++) {
    u -= probs[r]!
    if (u < 0) return order[r]!
  }
  return order[n - 1]!
}

/** log softmax(row / temperature)[tok] from the row's largest logit and its {@link scaledExps}, summed in id order. */
const logSoftmaxAt = (row: Float32Array, tok: number, temperature: number, max: number, e: Float64Array): number => {
  let sum = 0
  for (let i = 0; i < e.length; i++) sum += e[i]!
  return (row[tok]! - max) / temperature - Math.log(sum)
}

const validate = (policy: Policy, images: tf.Tensor, promptIds: tf.Tensor, o: SampleOptions): void => {
  const c = policy.config
  const b = images.shape[0]
  if (images.rank !== 4 || images.shape[1] !== c.imageHeight || images.shape[2] !== c.imageWidth || images.shape[3] !== c.imageChannels) {
    throw new Error(`Error in sample: images must be [B, ${c.imageHeight}, ${c.imageWidth}, ${c.imageChannels}], got [${images.shape.join(", ")}]`)
  }
  if (promptIds.rank !== 2 || promptIds.shape[0] !== b || promptIds.shape[1]! < 1 || promptIds.shape[1]! > c.maxPromptLength) {
    throw new Error(`Error in sample: promptIds must be [${b}, 1 … ${c.maxPromptLength}], got [${promptIds.shape.join(", ")}]`)
  }
  if (!(Number.isInteger(o.groupSize) && o.groupSize >= 1)) throw new Error(`Error in sample: groupSize must be an integer ≥ 1, got ${o.groupSize}`)
  if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 1 && o.maxNewTokens <= c.maxResponseLength)) {
    throw new Error(`Error in sample: maxNewTokens must be an integer in 1 … ${c.maxResponseLength}, got ${o.maxNewTokens}`)
  }
  const t = o.temperature ?? 1
  if (!(t >= 0)) throw new Error(`Error in sample: temperature must be ≥ 0, got ${t}`)
  const p = o.topP ?? 1
  if (!(p > 0 && p <= 1)) throw new Error(`Error in sample: topP must be in (0, 1], got ${p}`)
  const k = o.topK ?? 0
  if (!(Number.isInteger(k) && k >= 0)) throw new Error(`Error in sample: topK must be an integer ≥ 0, got ${k}`)
}

/**
 * Samples G responses for each of the B prompts (see the module doc).
 *
 * @example
 * const r = sample(policy, images, promptIds, { groupSize: 5, maxNewTokens: 16, padId: 0, stopTokens: [1] }, new Xoshiro128(0))
 * r.responseIds.shape // => [B * 5, 16]
 *
 * @category math
 */
export const sample = (policy: Policy, images: tf.Tensor, promptIds: tf.Tensor, options: SampleOptions, rng: Rng.Rng): Rollout => {
  validate(policy, images, promptIds, options)
  const c = policy.config
  const p = policy.params as Params
  const b = images.shape[0]!, g = options.groupSize, n = b * g, tp = promptIds.shape[1]!, tMax = options.maxNewTokens
  const stop = new Set(options.stopTokens ?? [])
  const ids = new Int32Array(n * tMax).fill(options.padId)
  const lengths = new Int32Array(n)
  const done = new Uint8Array(n)
  const tokenLogProbs = new Float32Array(n * tMax)
  const greedy = (options.temperature ?? 1) === 0
  const temp = greedy ? 1 : options.temperature ?? 1
  let live = n

  // Prefill: B rows; the cache repeats each prompt's keys/values for its G samples.
  const pre = tidy(() => {
    const { x: x0, t } = embedSequence(p, c, images, tf.cast(promptIds, "int32"))
    const { last, kv } = prefill(p, c, x0, b, t)
    return { logits: head(p, last), kv, t }
  })
  const dec = decoder(p, c, n, tp + numPatches(c) + tMax)
  dec.fill(pre.kv, b, pre.t, g)
  for (const l of pre.kv) tf.dispose([l.k, l.v])
  const first = pre.logits.dataSync() as Float32Array
  pre.logits.dispose()

  const v = c.vocabSize
  const pick = (step: number, logits: Float32Array, rowOf: (r: number) => number): void => {
    for (let r = 0; r < n; r++) {
      if (done[r] === 1) continue
      const src = rowOf(r)
      const row = logits.subarray(src * v, (src + 1) * v)
      // The draw and the token's log-prob share the row's exps.
      const order = byLogit(row)
      const max = row[order[0]!]!
      const e = scaledExps(row, max, temp)
      const tok = greedy ? order[0]! : draw(order, e, options, rng)
      tokenLogProbs[r * tMax + step] = logSoftmaxAt(row, tok, temp, max, e)
      ids[r * tMax + step] = tok
      lengths[r] = step + 1
      if (stop.has(tok)) {
        done[r] = 1
        live--
      }
    }
  }
  pick(0, first, (r) => Math.floor(r / g))

  const prev = new Int32Array(n)
  for (let step = 1; step < tMax && live > 0; step++) {
    for (let r = 0; r < n; r++) prev[r] = ids[r * tMax + step - 1]!
    pick(step, dec.step(prev, tp + step - 1), (r) => r)
  }
  dec.dispose()

  const mask = new Float32Array(n * tMax)
  for (let r = 0; r < n; r++) mask.fill(1, r * tMax, r * tMax + lengths[r]!)
  return {
    responseIds: tf.tensor2d(ids, [n, tMax], "int32"),
    responseMask: tf.tensor2d(mask, [n, tMax], "float32"),
    lengths,
    ids,
    logProbs: tokenLogProbs
  }
}
