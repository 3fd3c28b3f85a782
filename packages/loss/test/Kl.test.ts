import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Kl } from "../src/index.js"
import { assertNoLeak, batch, matrix, t2 } from "./arbitraries.js"

test("k3 follows the reference's clamps: d clamped to ±20, value clamped to 10", () => {
  // d = ref − lp. d = 1: e − 2; d = 796 → clamp 20 → e^20 − 21 → clamp 10; d = −30 → clamp −20 → e^−20 + 19 → 10.
  const k = Kl.klPenalty(t2([[-1, -800, 0]]), t2([[0, -4, -30]]), "low_var_kl").arraySync() as Array<Array<number>>
  assert.ok(Math.abs(k[0]![0]! - (Math.E - 2)) < 1e-6)
  assert.equal(k[0]![1], 10)
  assert.equal(k[0]![2], 10)
})

test("the gradient of abs is 0 where the two log-probs are equal, as PyTorch's", () => {
  const g = tf.grad((lp: tf.Tensor) => tf.sum(Kl.klPenalty(lp, t2([[-1, -1]]), "abs")))(t2([[-1, -2]]))
  assert.deepEqual(g.arraySync(), [[0, -1]]) // lp − ref = −1 at the second token
})

for (const penalty of ["abs", "mse", "low_var_kl"] as const) {
  test(`every ${penalty} value is ≥ 0 and is 0 exactly where the two log-probs agree`, () => {
    fc.assert(
      fc.property(batch, fc.array(fc.boolean(), { maxLength: 24 }), ({ logProbs, other }, same) => {
        const ref = other.map((r, i) => r.map((v, j) => (same[i * r.length + j] ? logProbs[i]![j]! : v)))
        const k = Kl.klPenalty(t2(logProbs), t2(ref), penalty).arraySync() as Array<Array<number>>
        k.forEach((row, i) =>
          row.forEach((v, j) => {
            const a = Math.fround(logProbs[i]![j]!)
            const b = Math.fround(ref[i]![j]!)
            assert.ok(v >= 0, `negative ${penalty}: ${v}`)
            if (a === b) assert.equal(v, 0)
            // Away from float32 rounding, distinct log-probs give a strictly positive value.
            if (Math.abs(a - b) > 1e-2) assert.ok(v > 0, `${penalty}(${a}, ${b}) = 0`)
          })
        )
      }),
      { numRuns: 60 }
    )
  })
}

test("the full-vocabulary KL of any two distributions is ≥ 0, and 0 only for equal ones", () => {
  const dist = (v: number) => fc.array(fc.double({ min: -4, max: 4, noNaN: true }), { minLength: v, maxLength: v })
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 8 }).chain((v) => fc.tuple(dist(v), dist(v))),
      ([p, q]) => {
        const kl = (a: Array<number>, b: Array<number>) => Kl.fullVocabularyKl(tf.tensor1d(a), tf.tensor1d(b)).dataSync()[0]!
        assert.ok(kl(p, q) >= 0)
        assert.equal(kl(p, p), 0)
        // Logits equal up to a constant are the same distribution; otherwise clearly different ones have KL > 0.
        const shifted = p.map((x, i) => x - q[i]!)
        const spread = Math.max(...shifted) - Math.min(...shifted)
        if (spread > 0.5) assert.ok(kl(p, q) > 0)
      }
    ),
    { numRuns: 60 }
  )
})

test("the reference's full mode is a per-row sum over time, not a KL (it can be negative)", () => {
  const full = Kl.klPenalty(t2([[-0.1, -3]]), t2([[-0.01, -0.2]]), "full").arraySync() as Array<number>
  const expected = Math.exp(-0.1) * (-0.1 + 0.01) + Math.exp(-3) * (-3 + 0.2)
  assert.equal(full.length, 1)
  assert.ok(Math.abs(full[0]! - expected) < 1e-6 && full[0]! < 0)
})

test("an unknown estimator is refused with the valid names", () => {
  assert.throws(() => Kl.klPenalty(t2([[0]]), t2([[0]]), "k4" as never), /unknown kl_penalty "k4"; expected one of kl, k1, abs/)
})

test("shapes that do not match are refused, naming both", () => {
  assert.throws(() => Kl.klPenalty(t2([[0, 1]]), t2([[0]]), "kl"), /refLogProbs has shape \[1, 1\] but logProbs has shape \[1, 2\]/)
})

test("KL estimators leave no tensor behind", () => {
  fc.assert(
    fc.property(matrix(2, 3), matrix(2, 3), (a, b) => {
      const [x, y] = [t2(a), t2(b)]
      for (const p of Kl.klPenalties) assertNoLeak(() => Kl.klPenalty(x, y, p))
      assertNoLeak(() => Kl.fullVocabularyKl(x, y))
      tf.dispose([x, y])
    }),
    { numRuns: 5 }
  )
})
