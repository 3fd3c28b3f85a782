// Native.decoder (a rollout's decode steps, one native call each, every product's weight packed once) against
// the calls it replaces in @papo/model's decoder: the token embedding as float32 adds, Native.decodeLayer per
// block over the same cache, the final LayerNorm row kernel and the head's Native.gemm. Bit for bit, on random
// shapes: one row or many, prompts repeated for groups, odd widths, a 2048-deep MLP product (which gemm() cuts by
// depth), several steps up to a full cache; then the same bits on one thread and two, and the refusals.
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
    heads: fc.integer({ min: 1, max: 3 }),
    hd: fc.constantFrom(1, 3, 32),
    dMlp: fc.constantFrom(1, 37, 512, 2048),
    layers: fc.integer({ min: 1, max: 3 }),
    vocab: fc.constantFrom(1, 5, 32, 40),
    positions: fc.integer({ min: 1, max: 8 }),
    prefix: fc.integer({ min: 1, max: 6 }),
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
  return { weights, rest, prefill, ids, offsets, tensors }
}

/** The decoder's steps as the per-block calls, on a cache in plain arrays filled as @papo/model's KvCache is. */
const reference = (c: Case, w: Native.DecoderWeights, rest: Record<string, tf.Tensor>, prefill: ReadonlyArray<tf.Tensor>, ids: ReadonlyArray<Int32Array>, offsets: ReadonlyArray<number>): Array<Float32Array> => {
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
  // x [n, d] | a [n, d] | y [n, d] | qkv [n, 3d] | h [n, dMlp] | logits [n, vocab]
  const scratch = tf.zeros([n * (6 * d + c.dMlp + c.vocab)])
  const x = Wasm.address(scratch), a = x + 4 * n * d, y = a + 4 * n * d, qkv = y + 4 * n * d, h = qkv + 12 * n * d, logits = h + 4 * n * c.dMlp
  const out = ids.map((step, s) => {
    const heap = Wasm.heap(), xs = new Float32Array(heap, x, n * d)
    for (let r = 0; r < n; r++) for (let j = 0; j < d; j++) xs[r * d + j] = Math.fround(table[step[r]! * d + j]! + positions[offsets[s]! * d + j]!)
    caches.forEach((cache, i) =>
      Native.decodeLayer(heap, cache.k, cache.v, { rows: n, heads: c.heads, hd: c.hd, dMlp: c.dMlp, capacity: c.capacity, pos: c.prefix + s, x, a, qkv, h, y, weights: w.blocks[i]! }))
    Native.rows(heap, { op: "layerNorm", rows: n, cols: d, inputs: [x, w.lnFGamma, w.lnFBeta], outputs: [a] })
    Native.gemm(heap, { batch: 1, m: n, n: c.vocab, k: d, aOffset: a, aBatch: 0, aRow: d, aCol: 1, bOffset: w.head, bBatch: 0, bRow: c.vocab, bCol: 1, cOffset: logits, biasOffset: -1 })
    return new Float32Array(heap, logits, n * c.vocab).slice()
  })
  scratch.dispose()
  return out
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

test("a native decoder's steps give the per-block calls' bits", { skip }, () => {
  fc.assert(fc.property(cases, (c) => {
    const { weights, rest, prefill, ids, offsets, tensors } = inputs(c)
    const want = reference(c, weights, rest, prefill, ids, offsets)
    const got = native(c, weights, prefill, ids, offsets)
    tf.dispose(tensors)
    got.forEach((logits, s) => assert.deepEqual(logits, want[s], `step ${s} of ${JSON.stringify(c)}`))
  }), { numRuns: 30, seed: 11 })
})

test("a native decoder is bit-identical on one thread and two, and refuses a full cache, a bad id or position, and use after dispose", { skip }, () => {
  const c: Case = { prompts: 16, group: 5, rows: 80, heads: 4, hd: 32, dMlp: 512, layers: 2, vocab: 32, positions: 32, prefix: 40, capacity: 44, seed: 4 }
  const { weights, prefill, ids, offsets, tensors } = inputs(c)
  Native.configure({ threads: 1 })
  const one = native(c, weights, prefill, ids, offsets)
  Native.configure({ threads: 2 })
  const two = native(c, weights, prefill, ids, offsets)
  two.forEach((logits, s) => assert.deepEqual(Buffer.from(logits.buffer), Buffer.from(one[s]!.buffer)))
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
