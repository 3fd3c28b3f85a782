// The portable micro-kernel (what a CPU without AVX2/FMA runs), forced in this process only.
import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { Native } from "../src/index.js"
import { agree, cases, setup } from "./agreement.js"

const original = await setup()
const native = original.status.available
const skip = !native && `native kernels off: ${original.status.available ? "" : original.status.reason}`

test("the generic micro-kernel agrees with the wasm kernel on random shapes", { skip }, () => {
  const s = Native.configure({ generic: true })
  assert.ok(s.available && s.isa === "generic")
  fc.assert(fc.property(cases, (c) => agree(original, c)), { numRuns: 30, seed: 11 })
})
