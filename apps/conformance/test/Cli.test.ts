import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, it } from "node:test"
import { backendNames } from "@papo/backend"
import { Effect } from "effect"
import { parseArgs, usage } from "../src/Cli.js"

const parsed = (argv: ReadonlyArray<string>) => Effect.runSync(parseArgs(argv))
const refused = (argv: ReadonlyArray<string>) => Effect.runSync(Effect.flip(parseArgs(argv)))

describe("papo-conformance command line", () => {
  it("a file, then options in any order", () => {
    assert.deepEqual(parsed(["--timeout-ms", "250", "cases.json", "--out", "r.json", "--backend", "cpu"]),
      { file: "cases.json", backend: "cpu", out: "r.json", timeoutMs: 250 })
    assert.deepEqual(parsed(["cases.json"]), { file: "cases.json", backend: "auto", out: undefined, timeoutMs: 5000 })
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
