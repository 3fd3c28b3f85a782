import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { Effect } from "effect"
import { parseArgs, usageOf } from "../src/Cli.js"

const studies = ["compare", "seeds"]
const parsed = (argv: ReadonlyArray<string>) => Effect.runSync(parseArgs(argv, studies))
const refused = (argv: ReadonlyArray<string>) => Effect.runSync(Effect.flip(parseArgs(argv, studies)))

describe("papo-experiment command line", () => {
  it("a study, flags and overrides in any order", () => {
    assert.deepEqual(parsed(["compare", "trainer.maxSteps=10", "--fresh", "--backend", "wasm", "worker.rollout.n=4"]),
      { study: "compare", fresh: true, backend: "wasm", overrides: ["trainer.maxSteps=10", "worker.rollout.n=4"] })
    assert.deepEqual(parsed(["seeds"]), { study: "seeds", fresh: false, backend: "auto", overrides: [] })
  })

  it("help lists the studies (code 0); no study, two studies or an unknown flag: code 2", () => {
    const usage = usageOf(studies)
    assert.match(usage, /studies: compare, seeds$/)
    assert.deepEqual([refused(["--help"]).code, refused(["--help"]).message], [0, usage])
    assert.deepEqual([refused([]).code, refused([]).message], [2, usage])
    assert.equal(refused(["compare", "seeds"]).message, `unexpected argument "seeds"\n${usage}`)
    assert.equal(refused(["compare", "--fast"]).message, `unexpected argument "--fast"\n${usage}`)
    assert.equal(refused(["compare", "--backend"]).message, `--backend needs a value\n${usage}`)
  })
})
