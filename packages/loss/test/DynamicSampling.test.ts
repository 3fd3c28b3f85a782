import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { DynamicSampling } from "../src/index.js"

const config = { filterLow: 0.01, filterHigh: 0.99, n: 2, rolloutBatchSize: 2, maxTryMakeBatch: 3 }

test("groups that are all right or all wrong are dropped; the bounds are strict", () => {
  const chunk = { uids: ["a", "a", "b", "b", "c", "c"], filterScores: [1, 1, 0, 1, 0, 0] }
  assert.deepEqual(DynamicSampling.filterGroups(chunk, 0.01, 0.99), [2, 3])
  assert.deepEqual(DynamicSampling.filterGroups({ uids: ["a", "a"], filterScores: [0.5, 0.5] }, 0.01, 0.5), [0, 1]) // nothing survives: all kept
})

test("chunks accumulate until the batch is full, then it is cut to rolloutBatchSize·n", () => {
  const chunks = [
    { uids: ["a", "a", "b", "b"], filterScores: [1, 0, 1, 1] },
    { uids: ["c", "c", "d", "d"], filterScores: [0, 1, 1, 0] },
    { uids: ["e", "e"], filterScores: [0, 1] }
  ]
  const r = DynamicSampling.makeBatch(chunks, config)
  assert.equal(r._tag, "Full")
  assert.deepEqual(r._tag === "Full" && r.finalBatch, [[0, 0], [0, 1], [1, 0], [1, 1]])
  assert.equal(r.numTries, 2)
})

test("running out of tries is reported, as the reference's ValueError", () => {
  const r = DynamicSampling.makeBatch([{ uids: ["a", "a"], filterScores: [1, 0] }, { uids: ["b", "b"], filterScores: [1, 1] }], { ...config, maxTryMakeBatch: 2, rolloutBatchSize: 5 })
  assert.equal(r._tag, "OutOfTries")
})

test("every kept group has a mean strictly inside the bounds, unless nothing in its chunk survived", () => {
  fc.assert(
    fc.property(fc.array(fc.array(fc.constantFrom(0, 1), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 6 }), (groups) => {
      const chunk = { uids: groups.flatMap((g, i) => g.map(() => `u${i}`)), filterScores: groups.flat() }
      const kept = DynamicSampling.filterGroups(chunk, 0.01, 0.99)
      const mixed = groups.map((g) => g.includes(0) && g.includes(1))
      if (!mixed.some(Boolean)) assert.equal(kept.length, chunk.uids.length)
      else assert.deepEqual(kept, chunk.uids.flatMap((u, i) => (mixed[Number(u.slice(1))] ? [i] : [])))
    })
  )
})
