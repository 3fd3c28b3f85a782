import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Aggregation } from "../src/index.js"
import { assertNoLeak, close, mask, matrix, read, shape, t2 } from "./arbitraries.js"

const v = [[1, 2, 3], [4, 100, -100]]
const m = [[1, 1, 1], [1, 0, 0]]

test("each mode on a hand-checked batch", () => {
  close(read(Aggregation.averageLoss(t2(v), t2(m), "token")), 10 / 4)
  close(read(Aggregation.averageLoss(t2(v), t2(m), "seq")), (2 + 4) / 2)
  close(read(Aggregation.averageLoss(t2(v), t2(m), "seq-mean-token-sum")), (6 + 4) / 2)
  close(read(Aggregation.averageLoss(t2(v), t2(m), "seq-mean-token-sum-norm")), 10 / 3)
  close(read(Aggregation.averageLoss(t2(v), t2(m), "seq-mean-token-sum-norm", { normLength: 8 })), 10 / 8)
})

test("verl's names are the reference's modes", () => {
  close(read(Aggregation.averageLoss(t2(v), t2(m), "token-mean")), read(Aggregation.averageLoss(t2(v), t2(m), "token")))
  close(read(Aggregation.averageLoss(t2(v), t2(m), "seq-mean-token-mean")), read(Aggregation.averageLoss(t2(v), t2(m), "seq")))
})

test("a fully masked row adds 0 to seq mode but still counts in the mean over rows", () => {
  close(read(Aggregation.averageLoss(t2([[2, 2], [9, 9]]), t2([[1, 1], [0, 0]]), "seq")), 1)
})

test("an unknown mode is refused with the valid names", () => {
  assert.throws(() => Aggregation.averageLoss(t2(v), t2(m), "mean" as never), /unknown loss_avg_mode "mean"; expected one of token, seq/)
})

test("aggregation ignores whatever sits at masked positions, in value and in gradient", () => {
  fc.assert(
    fc.property(
      shape.chain(({ b, t }) => fc.tuple(matrix(b, t), matrix(b, t, -1e6, 1e6), mask(b, t))),
      fc.constantFrom(...Aggregation.lossAggModes),
      ([values, junk, mk], mode) => {
        const other = values.map((r, i) => r.map((x, j) => (mk[i]![j] === 1 ? x : junk[i]![j]!)))
        const f = (x: tf.Tensor) => Aggregation.averageLoss(x, t2(mk), mode, { normLength: 7 })
        close(read(f(t2(other))), read(f(t2(values))), 1e-6)
        const g = tf.grad(f)(t2(other)).arraySync() as Array<Array<number>>
        g.forEach((r, i) => r.forEach((x, j) => mk[i]![j] === 0 && assert.equal(x, 0)))
      }
    ),
    { numRuns: 40 }
  )
})

test("aggregation leaves no tensor behind", () => {
  const [x, y] = [t2(v), t2(m)]
  for (const mode of Aggregation.lossAggModes) assertNoLeak(() => Aggregation.averageLoss(x, y, mode))
  tf.dispose([x, y])
})
