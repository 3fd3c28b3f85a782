import assert from "node:assert/strict"
import { describe, it } from "node:test"
import fc from "fast-check"
import { Mt19937 } from "../src/Mt19937.js"
import * as Rng from "../src/Rng.js"
import { Xoshiro128 } from "../src/Xoshiro128.js"

// python3: FNV-1a 32 over the UTF-8 bytes, h = ((h ^ b) * 0x01000193) & 0xffffffff from 0x811c9dc5
const fnv1a = { "1\u0000masks": 728711029, "7\u0000order\u00003": 742154375 }

describe("Rng: the interface and the derivation of a stream from (seed, labels)", () => {
  it("deriveSeed is FNV-1a of the seed and labels joined by NUL", () => {
    assert.equal(Rng.deriveSeed(1, "masks"), fnv1a["1\u0000masks"])
    assert.equal(Rng.deriveSeed(7, "order", 3), fnv1a["7\u0000order\u00003"])
  })

  it("make(seed, ...labels) is numpy's generator seeded with the derived word", () => {
    // python3: np.random.seed(728711029); np.random.rand(3).tolist()
    const g = Rng.make(1, "masks")
    assert.deepEqual([g.random(), g.random(), g.random()], [0.8537919852844419, 0.01845039039547014, 0.8541179163412781])
  })

  it("makeXoshiro(seed, ...labels) is xoshiro128** seeded with the derived word, and differs per label", () => {
    assert.deepEqual(Rng.makeXoshiro(1, "masks").state(), new Xoshiro128(fnv1a["1\u0000masks"]).state())
    assert.notDeepEqual(Rng.makeXoshiro(1, "sampling").state(), Rng.makeXoshiro(1, "eval-sampling").state())
  })

  it("both generators implement the interface", () => {
    const draw = (rng: Rng.Rng) => [rng.nextUint32(), rng.random(), rng.normal()]
    for (const rng of [Mt19937.seed(3), new Xoshiro128(3)]) {
      const [u, f, n] = draw(rng)
      assert.ok(Number.isInteger(u) && u! >= 0 && u! < 2 ** 32 && f! >= 0 && f! < 1 && Number.isFinite(n))
    }
  })

  it("property: streams of different labels are independent (no shared prefix)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 }), fc.string(), fc.string(), (seed, a, b) => {
        fc.pre(a !== b)
        const x = Rng.make(seed, a), y = Rng.make(seed, b)
        const xs = Array.from({ length: 4 }, () => x.nextUint32()), ys = Array.from({ length: 4 }, () => y.nextUint32())
        assert.notDeepEqual(xs, ys)
      }),
      { numRuns: 100 }
    )
  })

  it("property: int(rng, n) lies in [0, n)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 1, max: 1000 }), (seed, n) => {
        const rng = new Xoshiro128(seed)
        for (let i = 0; i < 50; i++) {
          const k = Rng.int(rng, n)
          assert.ok(Number.isInteger(k) && k >= 0 && k < n)
        }
      }),
      { numRuns: 100 }
    )
  })

  it("property: permutation(n) holds each of 0..n-1 once", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.nat({ max: 200 }), (seed, n) => {
        const p = Rng.permutation(n, Rng.make(seed, "order"))
        assert.deepEqual([...p].sort((a, b) => a - b), Array.from({ length: n }, (_, i) => i))
      }),
      { numRuns: 100 }
    )
  })

  it("permutation is uniform: each of the 6 orders of 3 items about 1/6 of 6000 draws", () => {
    const rng = Rng.make(2, "uniformity")
    const counts = new Map<string, number>()
    for (let i = 0; i < 6000; i++) {
      const key = Rng.permutation(3, rng).join("")
      counts.set(key, (counts.get(key) ?? 0) + 1)
    }
    assert.equal(counts.size, 6)
    // Binomial(6000, 1/6): sd ≈ 28.9; 5 sd either side of 1000.
    for (const [k, c] of counts) assert.ok(Math.abs(c - 1000) < 145, `${k}: ${c}`)
  })
})
