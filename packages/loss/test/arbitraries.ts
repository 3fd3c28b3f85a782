/**
 * Shared fast-check arbitraries and helpers for the @papo/loss tests: bounded shapes and values, masks
 * with at least one valid token, and a leak check.
 */
import assert from "node:assert/strict"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import type { PerceptionKl } from "../src/index.js"

export const shape = fc.record({ b: fc.integer({ min: 1, max: 4 }), t: fc.integer({ min: 1, max: 6 }) })

/** A bounded float matrix of the given shape. */
export const matrix = (b: number, t: number, min = -5, max = 5) =>
  fc.array(fc.array(fc.double({ min, max, noNaN: true, noDefaultInfinity: true }), { minLength: t, maxLength: t }), {
    minLength: b,
    maxLength: b
  })

/** A 0/1 mask with at least one 1. */
export const mask = (b: number, t: number) =>
  fc
    .array(fc.array(fc.integer({ min: 0, max: 1 }), { minLength: t, maxLength: t }), { minLength: b, maxLength: b })
    .filter((m) => m.some((r) => r.includes(1)))

/** Log-probs (≤ 0), a matching batch of "other" log-probs, advantages per row, and a mask. */
export const batch = shape.chain(({ b, t }) =>
  fc.record({
    logProbs: matrix(b, t, -6, 0),
    other: matrix(b, t, -6, 0),
    rowAdvantages: fc.array(fc.double({ min: -2, max: 2, noNaN: true }), { minLength: b, maxLength: b }),
    mask: mask(b, t)
  })
)

export const t2 = (x: ReadonlyArray<ReadonlyArray<number>>) => tf.tensor2d(x as Array<Array<number>>)
export const read = (x: tf.Tensor): number => x.dataSync()[0]!
export const close = (actual: number, expected: number, tol = 1e-5, what = "value") =>
  assert.ok(
    Math.abs(actual - expected) <= tol * (1 + Math.abs(expected)),
    `${what}: expected ${expected}, got ${actual}`
  )

/** Runs f, disposes everything it returned, and asserts no tensor was left behind. */
export const assertNoLeak = (f: () => tf.TensorContainer | object) => {
  const before = tf.memory().numTensors
  const out = f()
  tf.dispose(out as tf.TensorContainer)
  assert.equal(tf.memory().numTensors, before, "tensors leaked")
}

/** KL_prcp as the reference configures it: k3, token-mean, no clipping and no token mask. */
export const prcpConfig: PerceptionKl.PerceptionKlConfig = {
  klPrcpPenalty: "low_var_kl",
  lossAggMode: "token",
  useKlPrcpClipping: false,
  klPrcpClipping: 0.2,
  useKlPrcpTokenLevelMask: false,
  klPrcpTokenLevelMaskTopP: 0.2
}
