/**
 * The decoder's math over a flat parameter record (names as in the README's tensor table).
 * Shapes: N rows, T positions, d = dModel, H heads of hd = d / H, V vocab, Np patch tokens.
 */
import * as tf from "@tensorflow/tfjs"
import { Native, Wasm } from "@papo/kernels"
import { numPatches, type ModelConfig } from "../Config.js"
import { addPositions, attentionResidual, channelMatMul, dense, gelu, layerNorm, matMul2d, mlpResidual, nativeMatMuls, type Sublayer } from "./ops.js"

export type Params = Readonly<Record<string, tf.Tensor>>

const get = (p: Params, name: string): tf.Tensor => {
  const t = p[name]
  if (t === undefined) throw new Error(`Missing parameter "${name}"`)
  return t
}

/**
 * One layer's keys and values from a full pass: columns `kCol … kCol + d − 1` of `k` and `vCol … vCol + d − 1`
 * of `v` (`[N·T, ≥ d]`, rows (n, t), columns (head, hd)). Under the native kernels `k` and `v` are the same
 * fused `[N·T, 3d]` q | k | v tensor (no slicing copies); on wasm they are the separate projections.
 */
export interface LayerKv {
  readonly k: tf.Tensor2D
  readonly kCol: number
  readonly v: tf.Tensor2D
  readonly vCol: number
}

/** `[N, H, W, C]` → patch tokens `[N, Np, d]`: row-major patches, each flattened as (py, px, c). */
export const embedImages = (p: Params, c: ModelConfig, images: tf.Tensor): tf.Tensor3D => {
  const n = images.shape[0]!
  const ps = c.patchSize, hp = c.imageHeight / ps, wp = c.imageWidth / ps, np = hp * wp
  const rows = tf.reshape(images, [n * hp, ps, wp, ps * c.imageChannels]) // (N·Hp, py, Wp, px·C)
  const patches = tf.reshape(tf.transpose(rows, [0, 2, 1, 3]), [n * np, ps * ps * c.imageChannels]) // (N·Np, P)
  const x = dense(patches, get(p, "patch_embed.weight"), get(p, "patch_embed.bias")) // (N·Np, d)
  return addPositions(tf.reshape(x, [n, np, c.dModel]), get(p, "image_pos_embed"))
}

/** Token ids `[N, L]` at text positions `offset … offset + L − 1` → `[N, L, d]` (one-hot · E: no gather gradient). */
export const embedText = (p: Params, c: ModelConfig, ids: tf.Tensor, offset: number): tf.Tensor3D => {
  const [n, l] = ids.shape as [number, number]
  const oneHot = tf.oneHot(tf.reshape(tf.cast(ids, "int32"), [n * l]), c.vocabSize).asType("float32") as tf.Tensor2D
  const x = matMul2d(oneHot, get(p, "token_embed") as tf.Tensor2D) // (N·L, d)
  const pos = tf.slice(get(p, "text_pos_embed"), [offset, 0], [l, c.dModel]) // (L, d)
  return addPositions(tf.reshape(x, [n, l, c.dModel]), pos)
}

/**
 * {@link embedText} of one token per row at text position `offset`, read from plain arrays of `token_embed`
 * and `text_pos_embed`, as a tensor `[N, d]` (for a decode step on wasm): the same values, since a one-hot row
 * times E is that row of E exactly, and a float32 sum rounded from double is the float32 sum.
 */
export const embedTokens = (c: ModelConfig, table: Float32Array, positions: Float32Array, ids: ArrayLike<number>, offset: number): tf.Tensor2D => {
  const d = c.dModel
  const x = new Float32Array(ids.length * d)
  for (let r = 0; r < ids.length; r++) {
    const e = ids[r]! * d, o = r * d
    for (let j = 0; j < d; j++) x[o + j] = table[e + j]! + positions[offset * d + j]!
  }
  return tf.tensor2d(x, [ids.length, d])
}

/** `[T, T]` additive causal mask: 0 on and below the diagonal, −1e9 above. */
export const causalMask = (t: number): tf.Tensor2D => {
  const m = new Float32Array(t * t)
  for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) m[i * t + j] = -1e9
  return tf.tensor2d(m, [t, t])
}

/** q, k, v = a·W[:, part] + b[part]: three 2-D matMuls on column slices of the fused weight (a split of the fused output is slow on wasm). */
const qkvProjections = (p: Params, i: number, a: tf.Tensor, d: number): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] => {
  const w = get(p, `blocks.${i}.attn.qkv.weight`), b = get(p, `blocks.${i}.attn.qkv.bias`)
  const part = (j: number): tf.Tensor2D => dense(a, tf.slice(w, [0, j * d], [d, d]), tf.slice(b, [j * d], [d]))
  return [part(0), part(1), part(2)]
}

/**
 * Causal attention on the wasm kernels: scores s[i, (n,h), j] = q·k / √hd as a channel matMul over the N·H
 * (sequence, head) pairs (wasm's batched matMul is ~5× slower than its depthwise convolution).
 */
const attentionChannels = (q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, n: number, t: number, h: number): tf.Tensor2D => {
  const hd = q.shape[1] / h
  const mask = tf.reshape(causalMask(t), [t, 1, t])
  const qx = tf.reshape(tf.transpose(tf.reshape(tf.mul(q, 1 / Math.sqrt(hd)), [n, t, h, hd]), [1, 3, 0, 2]), [t, hd, n * h]) // (T, hd, N·H)
  const kw = tf.reshape(tf.transpose(tf.reshape(k, [n, t, h, hd]), [3, 0, 2, 1]), [hd, n * h, t]) // (hd, N·H, T)
  const att = tf.softmax(tf.add(channelMatMul(qx, kw), mask)) // (T, N·H, T)
  const vw = tf.reshape(tf.transpose(tf.reshape(v, [n, t, h, hd]), [1, 0, 2, 3]), [t, n * h, hd]) // (T, N·H, hd)
  const o = channelMatMul(tf.transpose(att, [0, 2, 1]), vw) // (T, N·H, hd)
  return tf.reshape(tf.transpose(tf.reshape(o, [t, n, h, hd]), [1, 0, 2, 3]), [n * t, h * hd])
}

/**
 * One layer's attention sublayer `x + attention(LN1(x))·W + b` on `x [N·T, d]`, with the keys and values (for
 * a KV cache) when `collect`. Under the native kernels: {@link attentionResidual} (one fused qkv matMul, the
 * fused attention kernel, the residual in the output product's store; one hand-written backward); on wasm:
 * three projections and {@link attentionChannels}.
 */
const attention = (p: Params, i: number, x: tf.Tensor2D, n: number, t: number, h: number, collect: boolean): { readonly y: tf.Tensor2D; readonly kv: LayerKv | null } => {
  const d = x.shape[1]
  if (nativeMatMuls()) {
    const { y, qkv } = attentionResidual(x, sublayer(p, `blocks.${i}.ln1`, `blocks.${i}.attn.qkv`, `blocks.${i}.attn.proj`), t, h)
    return { y, kv: collect && qkv !== null ? { k: qkv, kCol: d, v: qkv, vCol: 2 * d } : null }
  }
  const [q, k, v] = qkvProjections(p, i, layerNorm(x, get(p, `blocks.${i}.ln1.weight`), get(p, `blocks.${i}.ln1.bias`)), d) // 3 × (N·T, d), viewed as (N, T, H, hd)
  const merged = attentionChannels(q, k, v, n, t, h)
  return { y: tf.add(x, dense(merged, get(p, `blocks.${i}.attn.proj.weight`), get(p, `blocks.${i}.attn.proj.bias`))), kv: collect ? { k, kCol: 0, v, vCol: 0 } : null }
}

/** A residual sublayer's parameters: LayerNorm `norm`, then dense layers `first` and `second`. */
const sublayer = (p: Params, norm: string, first: string, second: string): Sublayer => ({
  gamma: get(p, `${norm}.weight`), beta: get(p, `${norm}.bias`),
  w1: get(p, `${first}.weight`), b1: get(p, `${first}.bias`),
  w2: get(p, `${second}.weight`), b2: get(p, `${second}.bias`)
})

/** One layer's MLP sublayer `x + gelu(LN2(x)·W1 + b1)·W2 + b2` (under the native kernels {@link mlpResidual}). */
const mlp = (p: Params, i: number, x: tf.Tensor2D): tf.Tensor2D => {
  if (nativeMatMuls()) return mlpResidual(x, sublayer(p, `blocks.${i}.ln2`, `blocks.${i}.mlp.fc`, `blocks.${i}.mlp.proj`))
  const h = layerNorm(x, get(p, `blocks.${i}.ln2.weight`), get(p, `blocks.${i}.ln2.bias`))
  const u = gelu(dense(h, get(p, `blocks.${i}.mlp.fc.weight`), get(p, `blocks.${i}.mlp.fc.bias`))) as tf.Tensor2D // (M, dMlp)
  return tf.add(x, dense(u, get(p, `blocks.${i}.mlp.proj.weight`), get(p, `blocks.${i}.mlp.proj.bias`)))
}

/**
 * All blocks over `x [N·T, d]` with causal attention. With `collect`, also returns each layer's keys and
 * values (for a KV cache).
 */
export const blocks = (
  p: Params,
  c: ModelConfig,
  x0: tf.Tensor2D,
  n: number,
  t: number,
  collect: boolean
): { readonly x: tf.Tensor2D; readonly kv: ReadonlyArray<LayerKv> } => {
  const kv: Array<LayerKv> = []
  let x = x0
  for (let i = 0; i < c.nLayers; i++) {
    const { y, kv: layer } = attention(p, i, x, n, t, c.nHeads, collect) // (N·T, d)
    x = mlp(p, i, y)
    if (layer !== null) kv.push(layer)
  }
  return { x, kv }
}

/**
 * The last block of {@link blocks} kept at `length` positions from `start` of each sequence: `x [N·T, d]` is the
 * output of the blocks before it (`blocks` over `nLayers − 1` layers); returns `y [N·length, d]`, and with
 * `collect` the layer's keys and values. The attention sublayer runs on all T positions (every kept query
 * attends to all earlier keys), the MLP on the kept rows only: the positions whose hidden state is read (the
 * 16 of 56 that predict response tokens in a log-prob pass, a prompt's last position in a rollout's prefill),
 * since no later layer reads the others. The MLP is row by row, so the kept rows are the same values as a full
 * pass's rows (bit for bit).
 */
export const lastBlockAt = (
  p: Params,
  c: ModelConfig,
  x: tf.Tensor2D,
  n: number,
  t: number,
  start: number,
  length: number,
  collect = false
): { readonly y: tf.Tensor2D; readonly kv: LayerKv | null } => {
  const i = c.nLayers - 1, d = c.dModel
  const { y, kv } = attention(p, i, x, n, t, c.nHeads, collect) // (N·T, d)
  const kept = tf.reshape(tf.slice(tf.reshape(y, [n, t, d]), [0, start, 0], [n, length, d]), [n * length, d]) as tf.Tensor2D // (N·length, d)
  return { y: mlp(p, i, kept), kv }
}

/**
 * A rollout's prefill: {@link blocks} over `x [N·T, d]` collecting every layer's keys and values, the last
 * block kept at each sequence's last position ({@link lastBlockAt}: the one hidden state a rollout reads,
 * `last [N, d]`).
 */
export const prefill = (p: Params, c: ModelConfig, x0: tf.Tensor2D, n: number, t: number): { readonly last: tf.Tensor2D; readonly kv: ReadonlyArray<LayerKv> } => {
  const { x, kv } = blocks(p, { ...c, nLayers: c.nLayers - 1 }, x0, n, t, true) // every block but the last
  const { y, kv: layer } = lastBlockAt(p, c, x, n, t, t - 1, 1, true)
  return { last: y, kv: [...kv, layer!] }
}

/**
 * The wasm path's KV cache in plain arrays, per layer `[N·H, capacity, hd]`: appending a step is a store, and
 * one-query attention over ≤ 64 positions runs faster in JS than as a handful of wasm kernels. (Under the native
 * kernels the cache lives in the `Native.decoder`.)
 */
export class KvCache {
  readonly k: Array<Float32Array>
  readonly v: Array<Float32Array>
  length = 0
  constructor(readonly c: ModelConfig, readonly rows: number, readonly capacity: number) {
    const size = rows * c.nHeads * capacity * (c.dModel / c.nHeads)
    this.k = Array.from({ length: c.nLayers }, () => new Float32Array(size))
    this.v = Array.from({ length: c.nLayers }, () => new Float32Array(size))
  }

  /**
   * Stores a full pass's keys/values (`[B·T, d]` each, from {@link blocks} with `collect`), repeating prompt b
   * for rows b·G … b·G + G − 1.
   */
  fill(kv: ReadonlyArray<LayerKv>, b: number, t: number, g: number): void {
    kv.forEach((layer, i) => {
      const ks = layer.k.dataSync() as Float32Array
      this.store(ks, layer.k.shape[1], layer.kCol, this.k[i]!, b, t, g)
      this.store(layer.v === layer.k ? ks : (layer.v.dataSync() as Float32Array), layer.v.shape[1], layer.vCol, this.v[i]!, b, t, g)
    })
    this.length = t
  }

  /** Copies columns `col … col + d − 1` of `src` (`[B·T, width]`) into `dst`, prompt b to its G rows. */
  private store(src: Float32Array, width: number, col: number, dst: Float32Array, b: number, t: number, g: number): void {
    const h = this.c.nHeads, hd = this.c.dModel / h, cap = this.capacity
    for (let p = 0; p < b; p++) {
      for (let pos = 0; pos < t; pos++) {
        for (let hh = 0; hh < h; hh++) {
          const from = (p * t + pos) * width + col + hh * hd
          for (let r = 0; r < g; r++) {
            const to = (((p * g + r) * h + hh) * cap + pos) * hd
            for (let j = 0; j < hd; j++) dst[to + j] = src[from + j]!
          }
        }
      }
    }
  }
}

/**
 * Causal attention of one new token per row: `qkv` is `[N, 3d]` (q | k | v); stores k, v at position
 * `cache.length` of `layer` and writes the attention output `[N, d]` into `out` (in double, as the native
 * decode step's kernel does).
 */
const attendOne = (cache: KvCache, layer: number, qkv: Float32Array, out: Float32Array): void => {
  const { c, capacity: cap } = cache
  const h = c.nHeads, d = c.dModel, hd = d / h, pos = cache.length, len = pos + 1
  const ks = cache.k[layer]!, vs = cache.v[layer]!
  const scale = 1 / Math.sqrt(hd)
  const scores = new Float64Array(len)
  for (let r = 0; r < cache.rows; r++) {
    for (let hh = 0; hh < h; hh++) {
      const base = ((r * h + hh) * cap) * hd
      const q = r * 3 * d + hh * hd
      ks.set(qkv.subarray(q + d, q + d + hd), base + pos * hd)
      vs.set(qkv.subarray(q + 2 * d, q + 2 * d + hd), base + pos * hd)
      let max = -Infinity
      for (let t = 0; t < len; t++) {
        let s = 0
        const kt = base + t * hd
        for (let j = 0; j < hd; j++) s += qkv[q + j]! * ks[kt + j]!
        s *= scale
        scores[t] = s
        if (s > max) max = s
      }
      let sum = 0
      for (let t = 0; t < len; t++) {
        const e = Math.exp(scores[t]! - max)
        scores[t] = e
        sum += e
      }
      const o = r * d + hh * hd
      for (let j = 0; j < hd; j++) out[o + j] = 0
      for (let t = 0; t < len; t++) {
        const w = scores[t]! / sum
        const vt = base + t * hd
        for (let j = 0; j < hd; j++) out[o + j] = out[o + j]! + w * vs[vt + j]!
      }
    }
  }
}

/**
 * One decode step on the tfjs kernels: the new tokens' embeddings `x [N, d]` attend to the cache plus
 * themselves; the cache grows by one position. Returns the new hidden states `[N, d]` (the caller disposes `x0`).
 */
export const decodeStep = (p: Params, c: ModelConfig, x0: tf.Tensor2D, cache: KvCache): tf.Tensor2D => {
  if (cache.length >= cache.capacity) throw new Error(`KV cache full (${cache.capacity} positions)`)
  const n = x0.shape[0], d = c.dModel
  let x = x0
  const att = new Float32Array(n * d)
  for (let i = 0; i < c.nLayers; i++) {
    const qkvT = tf.tidy(() => dense(layerNorm(x, get(p, `blocks.${i}.ln1.weight`), get(p, `blocks.${i}.ln1.bias`)), get(p, `blocks.${i}.attn.qkv.weight`), get(p, `blocks.${i}.attn.qkv.bias`)))
    const qkv = qkvT.dataSync() as Float32Array
    qkvT.dispose()
    attendOne(cache, i, qkv, att)
    const next = tf.tidy(() => {
      const o = tf.tensor2d(att, [n, d])
      return mlp(p, i, tf.add(x, dense(o, get(p, `blocks.${i}.attn.proj.weight`), get(p, `blocks.${i}.attn.proj.bias`))))
    })
    if (x !== x0) x.dispose()
    x = next
  }
  cache.length++
  return x
}

/**
 * Token-by-token decoding: {@link Decoder.fill} stores a prefill's keys and values, {@link Decoder.step} embeds
 * one token per row and returns the next logits as a plain array. Under the native kernels a
 * `Native.decoder` holds the weights (each product's packed once per rollout), the KV cache and the scratch,
 * and a step is one native call (every block's kernels, and the head); on wasm, a
 * {@link KvCache}, {@link decodeStep} and {@link head}. Both give the bits the tfjs kernels give.
 */
export interface Decoder {
  /** Stores a full pass's keys/values (from {@link prefill}) as the cache's first `t` positions, prompt b for rows b·G … b·G + G − 1. */
  readonly fill: (kv: ReadonlyArray<LayerKv>, b: number, t: number, g: number) => void
  /** Embeds `ids` (one per row) at text position `offset`, runs every block over the cache (one position longer after), and returns the logits `[N, V]` row-major. */
  readonly step: (ids: ArrayLike<number>, offset: number) => Float32Array
  /** Frees the decoder's memory. */
  readonly dispose: () => void
}

/** A {@link Decoder} for `rows` sequences and a cache of `capacity` positions, on the kernels in use. */
export const decoder = (p: Params, c: ModelConfig, rows: number, capacity: number): Decoder => {
  if (nativeMatMuls()) return nativeDecoder(p, c, rows, capacity)
  const cache = new KvCache(c, rows, capacity)
  const table = get(p, "token_embed").dataSync() as Float32Array, positions = get(p, "text_pos_embed").dataSync() as Float32Array
  return {
    fill: (kv, b, t, g) => cache.fill(kv, b, t, g),
    step: (ids, offset) => {
      const x0 = embedTokens(c, table, positions, ids, offset)
      const x = decodeStep(p, c, x0, cache)
      x0.dispose()
      const logitsT = tf.tidy(() => head(p, x))
      x.dispose()
      const logits = logitsT.dataSync() as Float32Array
      logitsT.dispose()
      return logits
    },
    dispose: () => {}
  }
}

/** {@link decoder} on the native kernels: a `Native.decoder` made from the weights where tfjs keeps them on the wasm heap. */
const nativeDecoder = (p: Params, c: ModelConfig, rows: number, capacity: number): Decoder => {
  const at = (t: string): number => Wasm.address(get(p, t))
  const blocks = Array.from({ length: c.nLayers }, (_, i): Native.BlockWeights => ({
    ln1Gamma: at(`blocks.${i}.ln1.weight`), ln1Beta: at(`blocks.${i}.ln1.bias`),
    qkvWeight: at(`blocks.${i}.attn.qkv.weight`), qkvBias: at(`blocks.${i}.attn.qkv.bias`),
    projWeight: at(`blocks.${i}.attn.proj.weight`), projBias: at(`blocks.${i}.attn.proj.bias`),
    ln2Gamma: at(`blocks.${i}.ln2.weight`), ln2Beta: at(`blocks.${i}.ln2.bias`),
    fcWeight: at(`blocks.${i}.mlp.fc.weight`), fcBias: at(`blocks.${i}.mlp.fc.bias`),
    outWeight: at(`blocks.${i}.mlp.proj.weight`), outBias: at(`blocks.${i}.mlp.proj.bias`)
  }))
  const shape = {
    rows, heads: c.nHeads, hd: c.dModel / c.nHeads, dMlp: c.dMlp, layers: c.nLayers, vocab: c.vocabSize,
    positions: get(p, "text_pos_embed").shape[0]!, capacity
  }
  const dec = Native.decoder(Wasm.heap(), shape, {
    blocks, lnFGamma: at("ln_f.weight"), lnFBeta: at("ln_f.bias"), head: at("lm_head.weight"), tokenTable: at("token_embed"), textPositions: at("text_pos_embed")
  })
  return {
    fill: (kv, b, t, g) =>
      kv.forEach((layer, i) =>
        dec.fill(Wasm.heap(), i, {
          k: Wasm.address(layer.k) + 4 * layer.kCol, kLd: layer.k.shape[1], v: Wasm.address(layer.v) + 4 * layer.vCol, vLd: layer.v.shape[1], prompts: b, length: t, group: g
        })),
    step: (ids, offset) => dec.step(ids instanceof Int32Array ? ids : Int32Array.from(ids), offset),
    dispose: () => dec.dispose()
  }
}

/** Final LayerNorm and LM head: `[M, d]` → logits `[M, V]`. */
export const head = (p: Params, x: tf.Tensor): tf.Tensor2D =>
  matMul2d(layerNorm(x, get(p, "ln_f.weight"), get(p, "ln_f.bias")), get(p, "lm_head.weight") as tf.Tensor2D)

/** The input sequence `[image][text]` as `[N·T, d]`, with T = Np + L. */
export const embedSequence = (
  p: Params,
  c: ModelConfig,
  images: tf.Tensor,
  textIds: tf.Tensor
): { readonly x: tf.Tensor2D; readonly n: number; readonly t: number } => {
  const n = images.shape[0]!
  const t = numPatches(c) + textIds.shape[1]!
  const x = tf.concat([embedImages(p, c, images), embedText(p, c, textIds, 0)], 1) // (N, T, d)
  return { x: tf.reshape(x, [n * t, c.dModel]), n, t }
}
