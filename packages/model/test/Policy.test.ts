import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { Config, Policy, Sampling } from "../src/index.js"
import { Xoshiro128 } from "@papo/random"
import { blocks, decoder, embedSequence, embedText, embedTokens, head, prefill, type Params } from "../src/internal/transformer.js"
import { tidy } from "../src/internal/ops.js"
import { randomBatch, setup } from "./helpers.js"

before(setup)
const c = Config.configs.tiny

test("parameter count matches the config formula and the named configs' sizes", () => {
  const policy = Policy.create(c, 0)
  const total = Object.values(policy.params).reduce((s, v) => s + v.size, 0)
  assert.equal(total, Config.parameterCount(c))
  Policy.dispose(policy)
  // bench-spec: small ≈ 0.82 M, medium ≈ 4.8 M
  assert.ok(Math.abs(Config.parameterCount(Config.configs.small) / 0.82e6 - 1) < 0.02)
  assert.ok(Math.abs(Config.parameterCount(Config.configs.medium) / 4.8e6 - 1) < 0.03)
})

test("an invalid config is refused with the field in the message", () => {
  assert.throws(() => Policy.create({ ...c, nHeads: 3 }, 0), /dModel 16 is not divisible by nHeads 3/)
  assert.throws(() => Policy.create({ ...c, patchSize: 3 }, 0), /patchSize 3 must divide/)
})

test("the same seed gives the same weights; a reference copy is frozen and independent", () => {
  const a = Policy.create(c, 5), b = Policy.create(c, 5), other = Policy.create(c, 6)
  const wa = Policy.getWeights(a)
  assert.deepEqual(wa, Policy.getWeights(b))
  assert.notDeepEqual(wa["token_embed"], Policy.getWeights(other)["token_embed"])
  const ref = Policy.reference(a)
  assert.equal(ref.trainable, false)
  assert.ok(Object.values(ref.params).every((v) => !v.trainable))
  Policy.setWeights(a, Policy.getWeights(other))
  assert.deepEqual(Policy.getWeights(ref), wa)
  assert.throws(() => Policy.setWeights(a, { ...wa, "lm_head.weight": new Float32Array(3) }), /"lm_head.weight" has 3 values/)
  assert.deepEqual(Policy.getWeights(a), Policy.getWeights(other)) // unchanged by the refused call
  for (const p of [a, b, other, ref]) Policy.dispose(p)
})

test("KV-cached logits equal the logits of a full recomputation", () => {
  const policy = Policy.create(c, 1)
  const p = policy.params as Params
  const n = 3, tp = 3, steps = c.maxResponseLength
  const { images, promptIds } = randomBatch(c, n, tp, 2)
  const ids = Int32Array.from({ length: n * steps }, (_, i) => (i * 7) % c.vocabSize)
  const tokens = tf.tensor2d(ids, [n, steps], "int32")
  // Full recomputation over [image][prompt][tokens]: logits at every position.
  const expected = tf.tidy(() => {
    const full = embedSequence(p, c, images, tf.concat([promptIds, tokens], 1))
    const fullLogits = tf.reshape(head(p, blocks(p, c, full.x, n, full.t, false).x), [n, full.t, c.vocabSize])
    return tf.slice(fullLogits, [0, full.t - steps - 1, 0], [n, steps, c.vocabSize]).arraySync() as Array<Array<Array<number>>>
  })
  // Cached: prefill the prefix, then one token at a time through the decoder in use (native or tfjs kernels).
  const pre = tidy(() => {
    const e = embedSequence(p, c, images, promptIds)
    const { last, kv } = prefill(p, c, e.x, n, e.t)
    return { logits: head(p, last), kv, t: e.t }
  })
  const dec = decoder(p, c, n, pre.t + steps)
  dec.fill(pre.kv, n, pre.t, 1)
  const cached = [pre.logits.dataSync() as Float32Array]
  for (let s = 0; s < steps - 1; s++) cached.push(dec.step(Int32Array.from({ length: n }, (_, r) => ids[r * steps + s]!), tp + s))
  let diff = 0, scale = 0
  cached.forEach((logits, s) => logits.forEach((x, i) => {
    const want = expected[Math.floor(i / c.vocabSize)]![s]![i % c.vocabSize]!
    diff = Math.max(diff, Math.abs(x - want)), scale = Math.max(scale, Math.abs(want))
  }))
  assert.ok(diff < 1e-4, `max |cached − full| = ${diff}`)
  assert.ok(scale > 1e-2, "logits are not trivially zero")
  dec.step(new Int32Array(n), tp + steps - 1) // the cache's last position
  assert.throws(() => dec.step(new Int32Array(n), tp + steps), /KV cache full/)
  dec.dispose()
  tf.dispose([pre.logits, ...pre.kv.flatMap((l) => [l.k, l.v])])
  Policy.dispose(policy)
  tf.dispose([images, promptIds, tokens])
})

test("responseLogits (last block on the response positions only) equals a full pass's logits at those positions", () => {
  for (const [config, seed] of [[c, 11], [{ ...c, nLayers: 3, nHeads: 4 }, 12], [{ ...c, nLayers: 1 }, 13]] as const) {
    const policy = Policy.create(config, seed)
    const p = policy.params as Params
    const n = 3, tp = 2, tr = config.maxResponseLength
    const { images, promptIds } = randomBatch(config, n, tp, seed)
    const responseIds = tf.tensor2d(Int32Array.from({ length: n * tr }, (_, i) => (i * 5 + seed) % config.vocabSize), [n, tr], "int32")
    const [got, want] = tf.tidy(() => {
      const full = embedSequence(p, config, images, tf.concat([promptIds, responseIds], 1))
      const logits = tf.reshape(head(p, blocks(p, config, full.x, n, full.t, false).x), [n, full.t, config.vocabSize])
      const start = Config.numPatches(config) + tp - 1
      return [Policy.responseLogits(policy, { images, promptIds, responseIds }), tf.slice(logits, [0, start, 0], [n, tr, config.vocabSize])]
    })
    assert.deepEqual(got.shape, want.shape)
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]!)
    assert.equal(diff, 0, `${JSON.stringify({ nLayers: config.nLayers })}: max |trimmed − full| = ${diff}`)
    tf.dispose([images, promptIds, responseIds, got, want])
    Policy.dispose(policy)
  }
})

test("a decode step's embeddings from plain arrays are embedText's bit for bit", () => {
  const policy = Policy.create(c, 5)
  const p = policy.params as Params
  const ids = Int32Array.from({ length: 9 }, (_, i) => (i * 5) % c.vocabSize)
  for (const offset of [0, 3, c.maxPromptLength + c.maxResponseLength - 1]) {
    const expected = tf.tidy(() => tf.reshape(embedText(p, c, tf.tensor2d(ids, [ids.length, 1], "int32"), offset), [ids.length, c.dModel]))
    const actual = embedTokens(c, p["token_embed"]!.dataSync() as Float32Array, p["text_pos_embed"]!.dataSync() as Float32Array, ids, offset)
    assert.deepEqual(actual.dataSync(), expected.dataSync())
    tf.dispose([expected, actual])
  }
  Policy.dispose(policy)
})

test("rollout log-probs (from the cache) equal Policy.logProbs (recomputed) on the response tokens", () => {
  const policy = Policy.create(c, 3)
  const { images, promptIds } = randomBatch(c, 2, 2, 4)
  const r = Sampling.sample(policy, images, promptIds, { groupSize: 3, maxNewTokens: 4, padId: 0, temperature: 0.7 }, new Xoshiro128(9))
  const rep = tf.tidy(() => {
    const idx = tf.tensor1d([0, 0, 0, 1, 1, 1], "int32")
    return { images: tf.gather(images, idx), promptIds: tf.gather(promptIds, idx) }
  })
  const lp = Policy.logProbs(policy, { ...rep, responseIds: r.responseIds }, 0.7)
  const got = lp.dataSync()
  got.forEach((x, i) => assert.ok(Math.abs(x - r.logProbs[i]!) < 1e-4, `position ${i}: ${x} vs ${r.logProbs[i]}`))
  tf.dispose([images, promptIds, rep.images, rep.promptIds, lp, r.responseIds, r.responseMask])
  Policy.dispose(policy)
})

test("log-probs are normalized: Σ_v exp(logProb(v)) = 1 at a response position", () => {
  const policy = Policy.create(c, 4)
  const v = c.vocabSize
  const { images, promptIds } = randomBatch(c, 1, 3, 5)
  const lp = tf.tidy(() => {
    const idx = tf.zeros([v], "int32")
    const prefix = tf.tile(tf.tensor2d([[3, 1]], [1, 2], "int32"), [v, 1])
    const responseIds = tf.concat([prefix, tf.reshape(tf.range(0, v, 1, "int32"), [v, 1])], 1) // last token = v
    const all = Policy.logProbs(policy, { images: tf.gather(images, idx), promptIds: tf.gather(promptIds, idx), responseIds }, 1.3)
    return tf.slice(all, [0, 2], [v, 1])
  })
  const total = Array.from(lp.dataSync()).reduce((s, x) => s + Math.exp(x), 0)
  assert.ok(Math.abs(total - 1) < 1e-5, `Σ p = ${total}`)
  tf.dispose([images, promptIds, lp])
  Policy.dispose(policy)
})

test("rows are independent: a row's log-probs do not depend on the other rows' images", () => {
  const policy = Policy.create(c, 6)
  const { images, promptIds } = randomBatch(c, 2, 2, 7)
  const responseIds = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32")
  const both = Policy.logProbs(policy, { images, promptIds, responseIds })
  const first = tf.tidy(() =>
    Policy.logProbs(policy, { images: tf.slice(images, [0], [1]), promptIds: tf.slice(promptIds, [0], [1]), responseIds: tf.slice(responseIds, [0], [1]) })
  )
  const a = both.arraySync()[0]!, b = first.arraySync()[0]!
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-5))
  tf.dispose([images, promptIds, responseIds, both, first])
  Policy.dispose(policy)
})

test("gradients match central finite differences on a tiny config", async () => {
  const { initBackend } = await import("@papo/backend")
  await initBackend("cpu") // float32 differences are cleaner on the reference backend; wasm is checked below
  const policy = Policy.create(c, 8)
  const { images, promptIds } = randomBatch(c, 2, 2, 9)
  const responseIds = tf.tensor2d([[1, 2, 3], [4, 5, 6]], [2, 3], "int32")
  const weights = tf.tensor2d([[0.3, -1.2, 0.7], [1.1, 0.4, -0.5]])
  const lossFn = (): tf.Scalar => tf.sum(tf.mul(Policy.logProbs(policy, { images, promptIds, responseIds }, 0.9), weights))
  const { grads, value } = tf.variableGrads(lossFn)
  value.dispose()
  const rng = new Xoshiro128(10)
  const checked = ["patch_embed.weight", "image_pos_embed", "token_embed", "text_pos_embed", "blocks.0.ln1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight", "blocks.0.mlp.fc.weight", "blocks.0.mlp.fc.bias", "ln_f.bias", "lm_head.weight"]
  for (const name of checked) {
    const v = policy.params[name]!
    const g = grads[v.name]!.dataSync()
    for (let k = 0; k < 3; k++) {
      const i = rng.nextUint32() % v.size
      const base = v.dataSync().slice()
      const h = 1e-2
      const at = (delta: number): number => {
        const w = base.slice()
        w[i] = w[i]! + delta
        v.assign(tf.tensor(w, v.shape))
        return tf.tidy(() => lossFn().dataSync()[0]!)
      }
      const fd = (at(h) - at(-h)) / (2 * h)
      v.assign(tf.tensor(base, v.shape))
      assert.ok(Math.abs(fd - g[i]!) < 2e-3 + 2e-2 * Math.abs(fd), `${name}[${i}]: analytic ${g[i]} vs finite difference ${fd}`)
    }
  }
  // The same gradients on wasm, every parameter (where the hand-written gradients matter most: under the
  // native kernels one backward per residual sublayer).
  await initBackend("wasm")
  const wasm = tf.variableGrads(lossFn)
  for (const name of Object.keys(policy.params)) {
    const v = policy.params[name]!
    const a = grads[v.name]!.dataSync(), b = wasm.grads[v.name]!.dataSync()
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]!) < 1e-4 + 1e-3 * Math.abs(x), `${name}[${i}] cpu ${x} vs wasm ${b[i]}`))
  }
  tf.dispose([images, promptIds, responseIds, weights, wasm.value, ...Object.values(grads), ...Object.values(wasm.grads)])
  Policy.dispose(policy)
})
