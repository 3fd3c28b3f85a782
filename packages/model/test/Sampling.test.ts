import assert from "node:assert/strict"
import { before, test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Config, Policy, Sampling } from "../src/index.js"
import { Xoshiro128 } from "@papo/random"
import { randomBatch, setup } from "./helpers.js"

before(setup)
const c = Config.configs.tiny

test("seeded sampling is reproducible, and a restored generator state replays the same tokens", () => {
  const policy = Policy.create(c, 0)
  const { images, promptIds } = randomBatch(c, 2, 3, 1)
  const opts = { groupSize: 4, maxNewTokens: 4, padId: 0, temperature: 1.5, topP: 0.95 }
  const a = Sampling.sample(policy, images, promptIds, opts, new Xoshiro128(42))
  const b = Sampling.sample(policy, images, promptIds, opts, new Xoshiro128(42))
  assert.deepEqual(a.ids, b.ids)
  const rng = new Xoshiro128(43)
  const saved = rng.state()
  const c1 = Sampling.sample(policy, images, promptIds, opts, rng)
  const c2 = Sampling.sample(policy, images, promptIds, opts, Xoshiro128.fromState(saved))
  assert.deepEqual(c1.ids, c2.ids)
  assert.notDeepEqual(a.ids, c1.ids) // another seed, another draw (32 tokens at temperature 1.5)
  assert.deepEqual(a.responseIds.shape, [8, 4])
  for (const r of [a, b, c1, c2]) tf.dispose([r.responseIds, r.responseMask])
  tf.dispose([images, promptIds])
  Policy.dispose(policy)
})

test("after a stop token a row emits PAD with mask 0; the stop token itself has mask 1", () => {
  const policy = Policy.create(c, 1)
  const { images, promptIds } = randomBatch(c, 3, 2, 2)
  // Every token but PAD (0) stops: each row stops at its first token.
  const stopAll = Array.from({ length: c.vocabSize - 1 }, (_, i) => i + 1)
  const r = Sampling.sample(policy, images, promptIds, { groupSize: 2, maxNewTokens: 4, padId: 0, stopTokens: stopAll }, new Xoshiro128(1))
  const ids = r.responseIds.arraySync(), mask = r.responseMask.arraySync()
  ids.forEach((row, i) => {
    const stopAt = row.findIndex((t) => stopAll.includes(t))
    assert.ok(stopAt >= 0)
    assert.equal(r.lengths[i], stopAt + 1)
    row.forEach((t, j) => {
      assert.equal(mask[i]![j], j <= stopAt ? 1 : 0)
      if (j > stopAt) assert.equal(t, 0)
    })
  })
  tf.dispose([images, promptIds, r.responseIds, r.responseMask])
  Policy.dispose(policy)
})

test("greedy and top-k 1 pick the argmax; samples stay within the top-k set", () => {
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -20, max: 20, noNaN: true }), { minLength: 2, maxLength: 40 }),
      fc.integer({ min: 1, max: 5 }),
      fc.nat(),
      (xs, k, seed) => {
        const logits = Float32Array.from(xs)
        const argmax = logits.indexOf(Math.max(...logits))
        const rng = new Xoshiro128(seed)
        assert.equal(Sampling.sampleToken(logits, { temperature: 0 }, rng), argmax)
        assert.equal(Sampling.sampleToken(logits, { topK: 1 }, rng), argmax)
        const kth = [...logits].sort((a, b) => b - a)[Math.min(k, logits.length) - 1]!
        const t = Sampling.sampleToken(logits, { topK: k, temperature: 2 }, rng)
        assert.ok(logits[t]! >= kth)
      }
    ),
    { numRuns: 100 }
  )
})

test("top-p keeps the smallest set whose probability reaches p", () => {
  // probs ∝ e^{2,1,0,-9}: ≈ 0.665, 0.245, 0.090, … ; top-p 0.8 keeps {0, 1}.
  const logits = Float32Array.of(2, 1, 0, -9)
  const rng = new Xoshiro128(3)
  const seen = new Set<number>()
  for (let i = 0; i < 300; i++) seen.add(Sampling.sampleToken(logits, { topP: 0.8 }, rng))
  assert.deepEqual([...seen].sort(), [0, 1])
  // The frequencies follow the renormalized probabilities.
  let zeros = 0
  for (let i = 0; i < 4000; i++) zeros += Sampling.sampleToken(logits, { topP: 0.8 }, rng) === 0 ? 1 : 0
  const p0 = Math.exp(2) / (Math.exp(2) + Math.exp(1))
  assert.ok(Math.abs(zeros / 4000 - p0) < 0.03, `${zeros / 4000} vs ${p0}`)
})

test("bad options are refused with the option in the message", () => {
  const policy = Policy.create(c, 0)
  const { images, promptIds } = randomBatch(c, 1, 2, 0)
  assert.throws(() => Sampling.sample(policy, images, promptIds, { groupSize: 1, maxNewTokens: c.maxResponseLength + 1, padId: 0 }, new Xoshiro128(0)), /maxNewTokens/)
  assert.throws(() => Sampling.sample(policy, images, promptIds, { groupSize: 1, maxNewTokens: 2, padId: 0, topP: 0 }, new Xoshiro128(0)), /topP/)
  tf.dispose([images, promptIds])
  Policy.dispose(policy)
})

test("small and large vocabularies order tied logits alike: padding with −∞ tokens changes no draw", () => {
  // 40 tokens (the small-vocabulary sort) with many ties, and the same 40 followed by 60 impossible tokens
  // (the large-vocabulary sort): ids within a tie must come in the same order, so every draw agrees.
  const small = Float32Array.from({ length: 40 }, (_, i) => (i * 7) % 5)
  const large = new Float32Array(100).fill(-Infinity)
  large.set(small)
  for (const options of [{}, { temperature: 0.5, topK: 12 }, { topP: 0.7 }]) {
    const a = new Xoshiro128(11), b = new Xoshiro128(11)
    const draws = Array.from({ length: 400 }, () => [Sampling.sampleToken(small, options, a), Sampling.sampleToken(large, options, b)])
    for (const [x, y] of draws) assert.equal(y, x)
    assert.ok(new Set(draws.map(([x]) => x)).size > 1)
  }
})
