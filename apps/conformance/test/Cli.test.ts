import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, it } from "node:test"
import { backendNames } from "@papo/backend"
import { Cause, Effect, Exit } from "effect"
import { parseArgs, usage } from "../src/Cli.js"

const run = (argv: ReadonlyArray<string>) => Effect.runSyncExit(parseArgs(argv))
const refused = (argv: ReadonlyArray<string>) => {
  const exit = run(argv)
  assert.ok(Exit.isFailure(exit), argv.join(" "))
  return Cause.squash(exit.cause) as { readonly message: string; readonly code: number }
}

describe("papo-conformance command line", () => {
  it("a file, then options in any order", () => {
    const exit = run(["--timeout-ms", "250", "cases.json", "--out", "r.json", "--backend", "cpu"])
    assert.ok(Exit.isSuccess(exit))
    assert.deepEqual(exit.value, { file: "cases.json", backend: "cpu", out: "r.json", timeoutMs: 250 })
    const plain = run(["cases.json"])
    assert.ok(Exit.isSuccess(plain))
    assert.deepEqual(plain.value, { file: "cases.json", backend: "auto", out: undefined, timeoutMs: 5000 })
  })

  it("bad command lines: code 2, the reason, the usage", () => {
    assert.equal(refused([]).message, usage)
    assert.equal(refused(["a.json", "--timeout-ms", "0"]).message, `--timeout-ms needs a positive number, got "0"\n${usage}`)
    assert.equal(refused(["a.json", "--out"]).message, `--out needs a value\n${usage}`)
    assert.equal(refused(["a.json", "b.json"]).message, `unexpected argument "b.json"\n${usage}`)
    const backend = refused(["a.json", "--backend", "gpu"])
    assert.equal(backend.code, 2)
    for (const name of backendNames) assert.ok(backend.message.includes(`"${name}"`), name)
    assert.deepEqual([refused(["--help"]).code, refused(["--help"]).message], [0, usage])
  })

  it("the binary exits 2 on a bad command line, before reading anything", () => {
    const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
    const r = spawnSync(process.execPath, ["--import", "tsx", main, "a.json", "--timeout-ms", "-1"], { encoding: "utf8" })
    assert.equal(r.status, 2)
    assert.match(r.stderr, /^--timeout-ms needs a positive number, got "-1"/)
  })
})
