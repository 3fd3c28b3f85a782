/**
 * The conformance runner on the golden vectors computed with the official PAPO code
 * (test/fixtures/papo-golden.json, copied from shared/golden; see test/fixtures/README.md).
 */
import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { initBackend } from "@papo/backend"
import { runners } from "../apps/conformance/src/Categories.js"
import { runGolden } from "../apps/conformance/src/Conformance.js"
import type { GoldenFile } from "../apps/conformance/src/Golden.js"

const golden = JSON.parse(readFileSync("test/fixtures/papo-golden.json", "utf8")) as GoldenFile
const lossCategories = ["advantage", "aggregation", "policy_loss", "kl", "perception_kl", "entropy", "double_entropy", "total_loss", "schedule", "dynamic_sampling"]

test("every loss category of the golden file has a runner", () => {
  for (const c of lossCategories) assert.ok(c in runners, `no runner for ${c}`)
})

for (const backend of ["cpu", "wasm"] as const) {
  test(`every case of every implemented category matches the reference (${backend} backend)`, async () => {
    await initBackend(backend)
    const results = await runGolden(golden)
    const implemented = results.filter((r) => r.category in runners)
    assert.ok(implemented.length >= 46, `only ${implemented.length} implemented cases`)
    const failed = implemented.filter((r) => !r.passed).map((r) => `${r.name}: ${r.detail}`)
    assert.deepEqual(failed, [])
  })
}

test("the CLI prints PASS/FAIL per case, the summary line, and exits 1 on a failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "papo-conf-"))
  const good = golden.cases.find((c) => c.category === "kl")!
  const bad = { ...good, name: "tampered", outputs: { ...good.outputs, kld: (good.outputs["kld"] as Array<Array<number>>).map((r) => r.map((v) => v + 0.5)) } }
  const unknown = { ...good, name: "from_the_future", category: "telepathy" }
  const file = join(dir, "cases.json")
  writeFileSync(file, JSON.stringify({ ...golden, cases: [good, bad, unknown] }))
  const r = spawnSync(process.execPath, ["apps/conformance/dist/src/main.js", file, "--backend", "cpu"], { encoding: "utf8" })
  const lines = r.stdout.trim().split("\n")
  assert.equal(lines[0], `PASS ${good.name}`)
  assert.match(lines[1]!, /^FAIL tampered: kld\[0\]\[0\]: expected .* \(off by 5\.000e-1\)/)
  assert.equal(lines[2], `FAIL from_the_future: category "telepathy" not implemented`)
  assert.equal(lines.at(-1), "1 passed, 2 failed")
  assert.equal(r.status, 1)
})

test("the CLI refuses a file that is not a conformance file, naming it", () => {
  const dir = mkdtempSync(join(tmpdir(), "papo-conf-"))
  const file = join(dir, "other.json")
  writeFileSync(file, JSON.stringify({ hello: 1 }))
  const r = spawnSync(process.execPath, ["apps/conformance/dist/src/main.js", file], { encoding: "utf8" })
  assert.equal(r.status, 2)
  assert.match(r.stderr, /other\.json: not a conformance file/)
})

test("the CLI grades the exact-numbers verifier cases, and names a case that disagrees", () => {
  const dir = mkdtempSync(join(tmpdir(), "papo-conf-"))
  const corpus = JSON.parse(readFileSync("test/fixtures/verifier/cases-exact.json", "utf8")) as {
    cases: Array<{ id: string; math_verify: { correct: boolean | null } }>
  }
  const good = spawnSync(process.execPath, ["apps/conformance/dist/src/main.js", "test/fixtures/verifier/cases-exact.json"], { encoding: "utf8" })
  assert.equal(good.stdout.trim().split("\n").at(-1), `${2 * corpus.cases.length} passed, 0 failed`, good.stdout.split("\n").filter((l) => l.startsWith("FAIL")).join("\n"))
  assert.equal(good.status, 0)
  // flip one reference verdict: the run must fail on exactly that case
  const flipped = corpus.cases.find((c) => c.id === "exact/int17-neighbour")!
  flipped.math_verify.correct = true
  const file = join(dir, "exact-tampered.json")
  writeFileSync(file, JSON.stringify(corpus))
  const bad = spawnSync(process.execPath, ["apps/conformance/dist/src/main.js", file], { encoding: "utf8" })
  const fails = bad.stdout.split("\n").filter((l) => l.startsWith("FAIL"))
  assert.deepEqual(fails.map((l) => l.split(":")[0]), ["FAIL exact/int17-neighbour [math-verify]"])
  assert.equal(bad.stdout.trim().split("\n").at(-1), `${2 * corpus.cases.length - 1} passed, 1 failed`)
  assert.equal(bad.status, 1)
})
