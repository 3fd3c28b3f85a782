import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { realpathSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, it } from "node:test"
import { Effect } from "effect"
import { help, parseArgs, switches, type UsageError } from "../src/Cli.js"

const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
const papo = (...args: ReadonlyArray<string>) => spawnSync(process.execPath, ["--import", "tsx", main, ...args], { encoding: "utf8" })
const parsed = (argv: ReadonlyArray<string>) => Effect.runSync(parseArgs(argv))
const usageOf = (argv: ReadonlyArray<string>): UsageError => {
  const r = Effect.runSync(Effect.result(parseArgs(argv)))
  if (r._tag === "Failure") return r.failure
  assert.fail(`expected ${argv.join(" ")} to be a usage error`)
}

describe("papo command line", () => {
  it("--help on each command, and a usage line without one", () => {
    for (const command of ["train", "sft", "eval"]) {
      const e = usageOf([command, "--help"])
      assert.equal(e.code, 0)
      assert.equal(e.message, help[command])
      assert.match(e.message, new RegExp(`^papo ${command}:`))
    }
    assert.equal(usageOf([]).code, 2)
    assert.match(usageOf(["fit"]).message, /unknown command "fit"/)
    assert.match(usageOf(["eval", "--resume"]).message, /unexpected argument "--resume"/)
    assert.match(usageOf(["train", "--config"]).message, /--config needs a value/)
  })

  it("parses the preset (first), the config file and the overrides", () => {
    const a = parsed(["train", "trainer.maxSteps=5", "--preset", "papo-g", "--config", "x.yaml", "--resume"])
    assert.deepEqual(a, { command: "train", file: "x.yaml", checkpoint: undefined, resume: true, overwrite: false, allowConfigChange: false, printConfig: false, overrides: ["preset=papo-g", "trainer.maxSteps=5"] })
    assert.equal(parsed(["eval", "--checkpoint", "runs/a"]).checkpoint, "runs/a")
  })

  it("every on/off flag of the table parses for its commands and is refused by the others", () => {
    for (const [field, { flag, commands }] of Object.entries(switches)) {
      for (const command of ["train", "sft", "eval"] as const) {
        if ((commands as ReadonlyArray<string>).includes(command)) {
          assert.equal(parsed([command, `--${flag}`])[field as keyof typeof switches], true, `${command} --${flag}`)
          assert.equal(parsed([command])[field as keyof typeof switches], false)
        } else {
          assert.match(usageOf([command, `--${flag}`]).message, new RegExp(`^unexpected argument "--${flag}"`))
        }
      }
    }
  })

  it("anything but an option or key.path=value is an unexpected argument; --flag=value works", () => {
    assert.match(usageOf(["train", "maxSteps"]).message, /^unexpected argument "maxSteps"\nusage: papo/)
    assert.match(usageOf(["sft", "--preset"]).message, /^--preset needs a value/)
    assert.equal(parsed(["sft", "--config=a.yaml"]).file, "a.yaml")
    assert.equal(usageOf(["--help"]).code, 0)
    assert.match(usageOf(["train", "--resume", "--overwrite"]).message, /^--resume and --overwrite exclude each other\nusage: papo/)
  })

  it("the binary: help exits 0; a bad config exits 2 before any work, naming the key", () => {
    const h = papo("sft", "--help")
    assert.equal(h.status, 0, h.stderr)
    assert.match(h.stdout, /^papo sft:/)
    const r = papo("train", "--preset", "papo-g", "algorithm.klPrcpCof=0.02", "worker.actor.lossAvgMode=tok")
    assert.equal(r.status, 2)
    assert.match(r.stderr, /unknown key "algorithm\.klPrcpCof" \(did you mean "algorithm\.klPrcpCoef"\?\)/)
  })

  it("npm links the papo bin into the root node_modules/.bin, and it runs (npx papo)", () => {
    const bin = fileURLToPath(new URL("../../../node_modules/.bin/papo", import.meta.url))
    assert.equal(realpathSync(bin), fileURLToPath(new URL("../bin/papo.mjs", import.meta.url)))
    const r = spawnSync(process.execPath, [bin, "eval", "--help"], { encoding: "utf8" })
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout.trim(), help["eval"])
  })
})
