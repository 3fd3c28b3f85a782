import assert from "node:assert/strict"
import { describe, it } from "node:test"
import fc from "fast-check"
import { readFileSync } from "node:fs"
import { Mt19937 } from "../src/Mt19937.js"

// The masking cases of the repository's golden file: each holds the seed the reference passed to
// np.random.seed and the uniform draws numpy produced after it.
const maskingCases = (JSON.parse(readFileSync(new URL("../../../test/fixtures/papo-golden.json", import.meta.url), "utf8")) as {
  cases: ReadonlyArray<{ readonly name: string; readonly category: string; readonly inputs: { readonly seed: number; readonly uniform_draws: Array<number> } }>
}).cases.filter((c) => c.category === "masking")

const take = (g: Mt19937, n: number, f: "random" | "normal" = "random") => Array.from({ length: n }, () => g[f]())

describe("Mt19937 (numpy legacy global RNG)", () => {
  it("reproduces the golden cases' uniform_draws from their seed, bit for bit", () => {
    assert.equal(maskingCases.length, 3)
    for (const c of maskingCases) {
      const draws = c.inputs.uniform_draws
      assert.deepEqual(take(Mt19937.seed(c.inputs.seed), draws.length), draws, c.name)
    }
  })

  it("matches numpy 2.4 values for rand and randn", () => {
    // python3: np.random.seed(0); np.random.rand(5).tolist(); np.random.randn(5).tolist()
    const g = Mt19937.seed(0)
    assert.deepEqual(take(g, 5), [0.5488135039273248, 0.7151893663724195, 0.6027633760716439, 0.5448831829968969, 0.4236547993389047])
    assert.deepEqual(take(g, 5, "normal"), [-0.8427240538292873, 1.9699244478698945, 1.2661185298577784, -0.5058765397605117, 2.5452007784710537])
    // np.random.seed(4294967295); np.random.rand(3)
    assert.deepEqual(take(Mt19937.seed(4294967295), 3), [0.0976320289940138, 0.9123828453026218, 0.78903530185164])
    // np.random.seed(0); np.random.rand(1000); np.random.rand(2): past the first regeneration of the state
    const h = Mt19937.seed(0)
    take(h, 1000)
    assert.deepEqual(take(h, 2), [0.5928802707811576, 0.01006369565609333])
  })

  it("rejects seeds numpy rejects", () => {
    for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) assert.throws(() => Mt19937.seed(bad), /seed must be an integer in \[0, 4294967295\]/)
  })

  it("rejects a malformed state", () => {
    const s = Mt19937.seed(1).state()
    assert.throws(() => Mt19937.fromState({ ...s, key: s.key.slice(1) }), /key must hold 624 integers/)
    assert.throws(() => Mt19937.fromState({ ...s, pos: 625 }), /pos must be an integer in \[0, 624\]/)
  })

  it("property: a saved state resumes the exact stream (uniform and normal, mid-pair)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.constantFrom("random" as const, "normal" as const), { maxLength: 700 }),
        fc.array(fc.constantFrom("random" as const, "normal" as const), { minLength: 1, maxLength: 50 }),
        (seed, before, after) => {
          const g = Mt19937.seed(seed)
          for (const f of before) g[f]()
          const saved = JSON.parse(JSON.stringify(g.state())) // survives a checkpoint file
          const expected = after.map((f) => g[f]())
          const resumed = Mt19937.fromState(saved)
          assert.deepEqual(after.map((f) => resumed[f]()), expected)
          g.restore(saved)
          assert.deepEqual(after.map((f) => g[f]()), expected)
        }
      ),
      { numRuns: 50 }
    )
  })

  it("property: random() lies in [0, 1) with 53-bit resolution", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), (seed) => {
        for (const u of take(Mt19937.seed(seed), 100)) {
          assert.ok(u >= 0 && u < 1)
          assert.ok(Number.isInteger(u * 2 ** 53))
        }
      }),
      { numRuns: 50 }
    )
  })
})
