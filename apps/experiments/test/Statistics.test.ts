import assert from "node:assert/strict"
import { test } from "node:test"
import * as fc from "fast-check"
import { paired, tCentralProbability, tQuantile, verdictOf } from "../src/Statistics.js"

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`)

test("t quantiles match the closed forms for 1, 2 and 4 degrees of freedom", () => {
  for (const p of [0.9, 0.975, 0.995]) {
    // df 1 is Cauchy: tan(π(p − ½)); df 2: (2p − 1)/√(2p(1 − p)); df 4: 2√(q − 1) with α = 4p(1 − p),
    // q = cos(acos(√α)/3)/√α (Hill 1970 / Shaw 2006).
    close(tQuantile(p, 1), Math.tan(Math.PI * (p - 0.5)), 1e-7, `df 1, p ${p}`)
    close(tQuantile(p, 2), (2 * p - 1) / Math.sqrt(2 * p * (1 - p)), 1e-9, `df 2, p ${p}`)
    const a = 4 * p * (1 - p)
    close(tQuantile(p, 4), 2 * Math.sqrt(Math.cos(Math.acos(Math.sqrt(a)) / 3) / Math.sqrt(a) - 1), 1e-9, `df 4, p ${p}`)
  }
})

test("t quantiles match the printed table (t₀.₉₇₅: df 5 2.5706, 10 2.2281, 30 2.0423)", () => {
  close(tQuantile(0.975, 5), 2.570582, 1e-6, "df 5")
  close(tQuantile(0.975, 10), 2.228139, 1e-6, "df 10")
  close(tQuantile(0.975, 30), 2.042272, 1e-6, "df 30")
  close(tQuantile(0.025, 5), -2.570582, 1e-6, "lower tail")
})

test("the central probability rises from 0 to 1 and inverts the quantile", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 40 }), fc.double({ min: 0.51, max: 0.999, noNaN: true }), (df, p) => {
      close(tCentralProbability(tQuantile(p, df), df), 2 * p - 1, 1e-9, `df ${df}`)
      assert.ok(tCentralProbability(1, df) < tCentralProbability(2, df))
    })
  )
})

test("the paired interval of a hand-computed example", () => {
  // Differences 1..6: mean 3.5, sd √3.5 = 1.870829, se 0.763763, t₀.₉₇₅(5) = 2.570582, half width 1.963300.
  const r = paired([10, 10, 10, 10, 10, 10], [11, 12, 13, 14, 15, 16])
  assert.equal(r.n, 6)
  assert.deepEqual(r.diffs, [1, 2, 3, 4, 5, 6])
  close(r.mean, 3.5, 1e-12, "mean")
  close(r.sd, 1.870829, 1e-6, "sd")
  close(r.ci95[0], 1.5367, 1e-4, "lower")
  close(r.ci95[1], 5.4633, 1e-4, "upper")
})

test("pairs with a missing side are left out; one pair has no interval", () => {
  const r = paired([1, NaN, 3], [2, 5, 5])
  assert.deepEqual(r.diffs, [1, 2])
  assert.ok(Number.isNaN(paired([1], [2]).ci95[0]))
  assert.throws(() => paired([1], [1, 2]), /1 baseline values but 2 method values/)
})

test("the verdict reads the interval: better or worse only when it excludes zero", () => {
  assert.equal(verdictOf([0.01, 0.05], "higher"), "better")
  assert.equal(verdictOf([-0.05, -0.01], "higher"), "worse")
  assert.equal(verdictOf([-0.05, -0.01], "lower"), "better")
  assert.equal(verdictOf([-0.01, 0.05], "higher"), "indistinguishable")
  assert.equal(verdictOf([NaN, NaN], "higher"), "indistinguishable")
})
