import assert from "node:assert/strict"
import { describe, it } from "node:test"
import fc from "fast-check"
import { Xoshiro128 } from "../src/Xoshiro128.js"

describe("Xoshiro128 (xoshiro128**)", () => {
  it("reproduces the reference outputs from state [1, 2, 3, 4]", () => {
    // Vigna's xoshiro128starstar.c from s = {1, 2, 3, 4}; the same vector is in Rust rand_xoshiro's tests.
    // The first two by hand: rotl(2·5, 7)·9 = 11520; then s1 becomes 0, so 0.
    const g = Xoshiro128.fromState([1, 2, 3, 4])
    assert.deepEqual(
      Array.from({ length: 10 }, () => g.nextUint32()),
      [11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849, 3729100597, 4258142804]
    )
  })

  it("rejects the all-zero state (a fixed point) and a wrong length", () => {
    assert.throws(() => Xoshiro128.fromState([0, 0, 0, 0]), /Invalid Xoshiro128 state/)
    assert.throws(() => Xoshiro128.fromState([1, 2, 3] as never), /Invalid Xoshiro128 state/)
  })

  it("property: a saved state resumes the exact stream", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.nat({ max: 500 }), (seed, skip) => {
        const g = new Xoshiro128(seed)
        for (let i = 0; i < skip; i++) g.nextUint32()
        const resumed = Xoshiro128.fromState(JSON.parse(JSON.stringify(g.state())))
        const expected = Array.from({ length: 20 }, () => g.random())
        assert.deepEqual(Array.from({ length: 20 }, () => resumed.random()), expected)
      }),
      { numRuns: 50 }
    )
  })

  it("property: random() lies in [0, 1) on a 2⁻³² grid", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const g = new Xoshiro128(seed)
        for (let i = 0; i < 100; i++) {
          const u = g.random()
          assert.ok(u >= 0 && u < 1 && Number.isInteger(u * 2 ** 32))
        }
      }),
      { numRuns: 50 }
    )
  })

  it("property: a fork draws one word from its parent and is a different stream", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        const parent = new Xoshiro128(seed)
        const twin = new Xoshiro128(seed)
        const child = parent.fork()
        assert.deepEqual(child.state(), new Xoshiro128(twin.nextUint32()).state())
        assert.deepEqual(parent.state(), twin.state())
        assert.notDeepEqual(child.state(), parent.state())
      }),
      { numRuns: 50 }
    )
  })

  it("normal(): mean ≈ 0 and variance ≈ 1 over 20,000 draws", () => {
    const g = new Xoshiro128(5)
    const xs = Array.from({ length: 20000 }, () => g.normal())
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length
    const variance = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length
    // 5 standard errors: 5/√n ≈ 0.035 for the mean, 5·√(2/n) ≈ 0.05 for the variance.
    assert.ok(Math.abs(mean) < 0.035, `mean ${mean}`)
    assert.ok(Math.abs(variance - 1) < 0.05, `variance ${variance}`)
  })
})
