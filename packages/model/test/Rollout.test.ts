// Fixed-seed rollouts against fixtures/rollout.json (tokens and their log-probs recorded from the code before the
// native decode path; see fixtures/README.md): the same weights, batch and sampling seed must give the same
// tokens and the same log-prob bits, on the native kernels with one thread and with two, and on wasm.
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { before, test } from "node:test"
import { Native } from "@papo/kernels"
import { rolloutCases, runCase } from "./rollout-cases.js"
import { setup } from "./helpers.js"

before(setup)

interface Recorded {
  readonly recordedAt: string
  readonly cases: ReadonlyArray<{ readonly name: string; readonly ids: ReadonlyArray<number>; readonly logProbs: ReadonlyArray<number> }>
}
const fixture = JSON.parse(readFileSync(new URL("./fixtures/rollout.json", import.meta.url), "utf8")) as Record<"native" | "wasm", Recorded>

const s = Native.status()
const path = s.available ? "native" : "wasm"
// The native entry holds the avx2-fma micro-kernel's bits; the portable one rounds differently.
const skip = s.available && s.isa !== "avx2-fma" && `native micro-kernel ${s.isa}: the fixture holds avx2-fma's bits`

const check = (threads: 1 | 2 | null): void => {
  if (threads !== null) Native.configure({ threads })
  for (const rc of rolloutCases) {
    const want = fixture[path].cases.find((c) => c.name === rc.name)!
    const got = runCase(rc)
    assert.deepEqual(got.ids, want.ids, `${path} ${rc.name}: tokens`)
    assert.deepEqual(Float32Array.from(got.logProbs), Float32Array.from(want.logProbs), `${path} ${rc.name}: log-probs`)
  }
}

test(`fixed-seed rollouts draw the recorded tokens with the recorded log-probs (${path}${s.available ? ", one thread then two" : ""})`, { skip }, () => {
  if (!s.available) return check(null)
  check(1)
  check(2)
})
