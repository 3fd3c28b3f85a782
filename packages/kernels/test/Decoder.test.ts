// Native.decoder (a rollout's decode steps, one native call each, every product's weight packed once) against
// the tfjs calls it replaces in @papo/model's decode step under Wasm.install: the token embedding as float32 adds;
// per block LayerNorm, fused matMuls with their bias, Native.attend over the same cache, Add and GELU; the final
// LayerNorm and the head's matMul. Bit for bit, on random shapes: one row or many, prompts repeated for groups, 1
// to 4 heads, hd 1 / odd / 32, odd widths, a 2048-deep MLP product (which gemm() cuts by depth), caches from one
// position to 44, several steps up to a full cache; then the same bits on one thread and two, and the refusals.
import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Native, Wasm } from "../src/index.js"
import { setup } from "./agreement.js"

const original = await setup()
const skip = !original.status.available && `native kernels off: ${original.status.available ? "" : original.status.reason}`

type Case = Native.DecoderShape & { readonly prompts: number; readonly group: number; readonly prefix: number; readonly seed: number }

const cases: fc.Arbitrary<Case> = fc
  .record({
    prompts: fc.integer({ min: 1, max: 12 }),
    group: fc.integer({ min: 1, max: 3 }),
    heads: fc.integer({ min: 1, max: 4 }),
    hd: fc.constantFrom(1, 3, 32),
    dMlp: fc.constantFrom(1, 37, 512, 2048),
    layers: fc.integer({ min: 1, max: 3 }),
    vocab: fc.constantFrom(1, 5, 32, 40),
    positions: fc.integer({ min: 1, max: 8 }),
    prefix: fc.oneof(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 30, max: 40 })),
    steps: fc.integer({ min: 1, max: 4 }),
    seed: fc.integer({ min: 0, max: 1e6 })
  })
  .map(({ steps, ...c }) => ({ ...c, rows: c.prompts * c.group, capacity: c.prefix + steps }))

const blockNames = ["ln1Gamma", "ln1Beta", "qkvWeight", "qkvBias", "projWeight", "projBias", "ln2Gamma", "ln2Beta", "fcWeight", "fcBias", "outWeight", "outBias"] as const

/** Random weights (as tensors on the heap), a prefill's fused q | k | v per layer `[prompts·prefix, 3d]`, and token ids per step. */
const inputs = (c: Case) => {
  const d = c.heads * c.hd
  let seed = c.seed
  const random = (shape: Array<number>, scale = 0.5) => tf.randomUniform(shape, -scale, scale, "float32", seed++)
  const shapes: Record<(typeof blockNames)[number], Array<number>> = {
    ln1Gamma: [d], ln1Beta: [d], qkvWeight: [d, 3 * d], qkvBias: [3 * d], projWeight: [d, d], projBias: [d],
    ln2Gamma: [d], ln2Beta: [d], fcWeight: [d, c.dMlp], fcBias: [c.dMlp], outWeight: [c.dMlp, d], outBias: [d]
  }
  const blocks = Array.from({ length: c.layers }, () => Object.fromEntries(blockNames.map((n) => [n, random(shapes[n])])) as Record<(typeof blockNames)[number], tf.Tensor>)
  const rest = { lnFGamma: random([d]), lnFBeta: random([d]), head: random([d, c.vocab]), tokenTable: random([c.vocab, d], 2), textPositions: random([c.positions, d], 2) }
  const prefill = Array.from({ length: c.layers }, () => random([c.prompts * c.prefix, 3 * d], 1))
  const ids = Array.from({ length: c.capacity - c.prefix }, (_, s) => Int32Array.from({ length: c.rows }, (_, r) => (r * 7 + s * 3 + c.seed) % c.vocab))
  const offsets = Array.from({ length: c.capacity - c.prefix }, (_, s) => (s + c.seed) % c.positions)
  const weights: Native.DecoderWeights = {
    blocks: blocks.map((b) => Object.fromEntries(blockNames.map((n) => [n, Wasm.address(b[n])])) as unknown as Native.BlockWeights),
    ...(Object.fromEntries(Object.entries(rest).map(([k, t]) => [k, Wasm.address(t)])) as Omit<Native.DecoderWeights, "blocks">)
  }
  const tensors = [...blocks.flatMap((b) => Object.values(b)), ...Object.values(rest), ...prefill]
  return { weights, blocks, rest, prefill, ids, offsets, tensors }
}

/** One block's decode step as @papo/model ran it on the tfjs kernels (Native.attend on the cache at `pos`): x after the block. */
const block = (c: Case, w: Record<(typeof blockNames)[number], tf.Tensor>, x: tf.Tensor2D, k: Float32Array, v: Float32Array, pos: number): tf.Tensor2D => {
  const d = c.heads * c.hd
  const qkv = tf.tidy(() => tf.fused.matMul({ a: Wasm.layerNorm(x, w.ln1Gamma, w.ln1Beta) as tf.Tensor2D, b: w.qkvWeight as tf.Tensor2D, bias: w.qkvBias }))
  const att = new Float32Array(c.rows * d)
  Native.attend(qkv.dataSync() as Float32Array, k, v, att, { rows: c.rows, heads: c.heads, hd: c.hd, capacity: c.capacity, pos })
  qkv.dispose()
  return tf.tidy(() => {
    const x1 = tf.add(x, tf.fused.matMul({ a: tf.tensor2d(att, [c.rows, d]), b: w.projWeight as tf.Tensor2D, bias: w.projBias }))
    const u = Wasm.gelu(tf.fused.matMul({ a: Wasm.layerNorm(x1, w.ln2Gamma, w.ln2Beta) as tf.Tensor2D, b: w.fcWeight as tf.Tensor2D, bias: w.fcBias }))
    return tf.add(x1, tf.fused.matMul({ a: u as tf.Tensor2D, b: w.outWeight as tf.Tensor2D, bias: w.outBias })) as tf.Tensor2D
  })
}

/** The decoder's steps as the tfjs calls, on a cache in plain arrays filled as @papo/model's KvCache is. */
const reference = (c: Case, blocks: ReadonlyArray<Record<(typeof blockNames)[number], tf.Tensor>>, rest: Record<string, tf.Tensor>, prefill: ReadonlyArray<tf.Tensor>, ids: ReadonlyArray<Int32Array>, offsets: ReadonlyArray<number>): Array<Float32Array> => {
  const d = c.heads * c.hd, n = c.rows
  const caches = prefill.map((t) => {
    const src = t.dataSync() as Float32Array, k = new Float32Array(n * d * c.capacity), v = new Float32Array(n * d * c.capacity)
    for (let p = 0; p < c.prompts; p++)
      for (let r = p * c.group; r < (p + 1) * c.group; r++)
        for (let h = 0; h < c.heads; h++)
          for (let pos = 0; pos < c.prefix; pos++)
            for (let j = 0; j < c.hd; j++) {
              const from = (p * c.prefix + pos) * 3 * d + h * c.hd + j, to = ((r * c.heads + h) * c.capacity + pos) * c.hd + j
              k[to] = src[from + d]!, v[to] = src[from + 2 * d]!
            }
    return { k, v }
  })
  const table = rest["tokenTable"]!.dataSync() as Float32Array, positions = rest["textPositions"]!.dataSync() as Float32Array
  return ids.map((step, s) => {
    const embedded = new Float32Array(n * d)
    for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) embedded[r * d + j] = Math.fround(table[step[r]! * d + j]! + positions[offsets[s]! * d + j]!)
    let x = tf.tensor2d(embedded, [n, d])
    caches.forEach((cache, i) => {
      const next = block(c, blocks[i]!, x, cache.k, cache.v, c.prefix + s)
      x.dispose()
      x = next
    })
    const logits = tf.tidy(() => tf.matMul(Wasm.layerNorm(x, rest["lnFGamma"]!, rest["lnFBeta"]!) as tf.Tensor2D, rest["head"]!).dataSync() as Float32Array)
    x.dispose()
    return logits
  })
}

/** The same steps through one Native.decoder. */
const native = (c: Case, w: Native.DecoderWeights, prefill: ReadonlyArray<tf.Tensor>, ids: ReadonlyArray<Int32Array>, offsets: ReadonlyArray<number>): Array<Float32Array> => {
  const d = c.heads * c.hd
  const dec = Native.decoder(Wasm.heap(), c, w)
  prefill.forEach((t, i) => {
    const at = Wasm.address(t)
    dec.fill(Wasm.heap(), i, { k: at + 4 * d, kLd: 3 * d, v: at + 8 * d, vLd: 3 * d, prompts: c.prompts, length: c.prefix, group: c.group })
  })
  const out = ids.map((step, s) => dec.step(step, offsets[s]!))
  dec.dispose()
  return out
}

test("a native decoder's steps give the tfjs kernels' bits", { skip }, () => {
  fc.assert(fc.property(cases, (c) => {
    const { weights, blocks, rest, prefill, ids, offsets, tensors } = inputs(c)
    const want = reference(c, blocks, rest, prefill, ids, offsets)
    const got = native(c, weights, prefill, ids, offsets)
    tf.dispose(tensors)
    got.forEach((logits, s) => assert.deepEqual(logits, want[s], `step ${s} of ${JSON.stringify(c)}`))
  }), { numRuns: 30, seed: 11 })
})

test("a native decoder is bit-identical on one thread and two, and refuses weights off the heap, a full cache, a bad id or position, and use after dispose", { skip }, () => {
  const c: Case = { prompts: 16, group: 5, rows: 80, heads: 4, hd: 32, dMlp: 512, layers: 2, vocab: 32, positions: 32, prefix: 40, capacity: 44, seed: 4 }
  const { weights, prefill, ids, offsets, tensors } = inputs(c)
  Native.configure({ threads: 1 })
  const one = native(c, weights, prefill, ids, offsets)
  Native.configure({ threads: 2 })
  const two = native(c, weights, prefill, ids, offsets)
  two.forEach((logits, s) => assert.deepEqual(Buffer.from(logits.buffer), Buffer.from(one[s]!.buffer)))
  assert.throws(() => Native.decoder(Wasm.heap(), c, { ...weights, head: Wasm.heap().byteLength - 4 }), /tensor 26 lies outside the heap/)
  const dec = Native.decoder(Wasm.heap(), c, weights)
  assert.throws(() => dec.step(new Int32Array(c.rows).fill(c.vocab), 0), /token id out of range/)
  assert.throws(() => dec.step(new Int32Array(c.rows), c.positions), /text position out of range/)
  assert.throws(() => dec.fill(Wasm.heap(), 0, { k: 0, kLd: 384, v: 0, vLd: 384, prompts: 16, length: 40, group: 4 }), /prompts × group other than the rows/)
  for (let s = 0; s < c.capacity; s++) dec.step(new Int32Array(c.rows), 0)
  assert.throws(() => dec.step(new Int32Array(c.rows), 0), /KV cache full/)
  dec.dispose()
  assert.throws(() => dec.step(new Int32Array(c.rows), 0), /freed/)
  tf.dispose(tensors)
})
