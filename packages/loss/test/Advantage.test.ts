import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { Advantage } from "../src/index.js"
import { assertNoLeak, t2 } from "./arbitraries.js"

/** Rewards in the reference's set {0, 0.1, 0.9, 1} with group ids, every group of size ≥ 2, shuffled. */
const groupedRewards = fc
  .array(fc.array(fc.constantFrom(0, 0.1, 0.9, 1), { minLength: 2, maxLength: 6 }), { minLength: 1, maxLength: 5 })
  .chain((groups) => {
    const rows = groups.flatMap((g, gi) => g.map((r) => ({ r, id: `uid-${gi}` })))
    return fc.shuffledSubarray(rows, { minLength: rows.length, maxLength: rows.length })
  })

test("a hand-checked group: unbiased std, eps outside the sqrt", () => {
  const a = Advantage.groupAdvantages([1, 0, 0], ["g", "g", "g"])
  const std = Math.sqrt(((2 / 3) ** 2 + 2 * (1 / 3) ** 2) / 2)
  assert.ok(Math.abs(a[0]! - (2 / 3) / (std + 1e-6)) < 1e-12)
})

test("groups are found by id, not by position", () => {
  const interleaved = Advantage.groupAdvantages([1, 5, 0, 5, 1, 7], ["a", "b", "a", "b", "a", "b"])
  const contiguous = Advantage.groupAdvantages([1, 0, 1, 5, 5, 7], ["a", "a", "a", "b", "b", "b"])
  assert.deepEqual([interleaved[0], interleaved[2], interleaved[4]], [contiguous[0], contiguous[1], contiguous[2]])
  assert.deepEqual([interleaved[1], interleaved[3], interleaved[5]], [contiguous[3], contiguous[4], contiguous[5]])
})

test("an all-equal group gives exactly 0, even for non-dyadic rewards", () => {
  assert.deepEqual(Array.from(Advantage.groupAdvantages([0.1, 0.1, 0.1, 0.9, 0.1], ["x", "x", "x", "y", "y"]).slice(0, 3)), [0, 0, 0])
})

test("a group of one is an error that names it", () => {
  assert.throws(() => Advantage.groupAdvantages([1, 0, 1], ["a", "a", "b"]), /group "b" has a single response \(row 2\)/)
})

test("Dr. GRPO (no std scaling) and batch-std scaling", () => {
  assert.deepEqual(Array.from(Advantage.groupAdvantages([1, 0, 0, 0], ["a", "a", "b", "b"], { scaling: "none" })), [0.5, -0.5, 0, 0])
  const batchStd = Math.sqrt((3 * 0.25 ** 2 + 0.75 ** 2) / 3)
  const b = Advantage.groupAdvantages([1, 0, 0, 0], ["a", "a", "b", "b"], { scaling: "batch-std" })
  assert.ok(Math.abs(b[0]! - 0.5 / (batchStd + 1e-6)) < 1e-12)
})

for (const scaling of Advantage.advantageScalings) {
  test(`group advantages sum to zero in every group (${scaling})`, () => {
    fc.assert(
      fc.property(groupedRewards, (rows) => {
        const a = Advantage.groupAdvantages(rows.map((x) => x.r), rows.map((x) => x.id), { scaling })
        const sums = new Map<string, number>()
        rows.forEach((x, i) => sums.set(x.id, (sums.get(x.id) ?? 0) + a[i]!))
        for (const s of sums.values()) assert.ok(Math.abs(s) < 1e-9, `group sum ${s}`)
      })
    )
  })
}

test("group advantages are invariant to adding a constant to a group's rewards", () => {
  fc.assert(
    fc.property(groupedRewards, fc.double({ min: -3, max: 3, noNaN: true }), (rows, c) => {
      const ids = rows.map((x) => x.id)
      const a = Advantage.groupAdvantages(rows.map((x) => x.r), ids)
      const shifted = Advantage.groupAdvantages(rows.map((x) => (x.id === "uid-0" ? x.r + c : x.r)), ids)
      a.forEach((v, i) => assert.ok(Math.abs(v - shifted[i]!) < 1e-6, `${v} vs ${shifted[i]}`))
    })
  )
})

test("token advantages sum the rewards over every position and broadcast over the mask", () => {
  const rewards = t2([[0, 0, 1], [0, 0, 0], [0.5, 0, 0], [0, 0, 0]])
  const m = t2([[1, 1, 1], [1, 1, 0], [1, 0, 0], [0, 0, 0]])
  const { advantages, scores } = Advantage.tokenAdvantages(rewards as tf.Tensor2D, m as tf.Tensor2D, ["a", "a", "b", "b"])
  const a0 = scores[0]!
  assert.ok(a0 > 0 && Math.abs(scores[1]! + a0) < 1e-9)
  const adv = advantages.arraySync() as Array<Array<number>>
  assert.deepEqual(adv[1]!.map((x) => x !== 0), [true, true, false])
  assert.ok(adv[3]!.every((x) => x === 0)) // a fully masked row keeps its score but gets no token advantage
  assert.ok(scores[3]! < 0)
  assertNoLeak(() => Advantage.tokenAdvantages(rewards as tf.Tensor2D, m as tf.Tensor2D, ["a", "a", "b", "b"]).advantages)
})
