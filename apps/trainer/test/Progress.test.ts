import assert from "node:assert/strict"
import { describe, it } from "node:test"
import * as Progress from "../src/Progress.js"

describe("Progress", () => {
  it("without a terminal: a line at most every 5 s, and the last step's line at the end", () => {
    const out: Array<string> = []
    let t = 0
    const p = Progress.make("auto", 10, "train", { write: (s) => out.push(s), now: () => t, isTTY: false })
    for (let step = 1; step <= 10; step++) {
      t = step * 1000
      p.update(step, `acc ${step}`)
    }
    p.done()
    // Steps 1 (the first), 6 (5 s later), then 10 at the end.
    assert.deepEqual(out.map((l) => /step (\d+)\/10/.exec(l)?.[1]), ["1", "6", "10"])
    assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")))
  })

  it("on a terminal: the bar redrawn after every step; quiet prints nothing", () => {
    const out: Array<string> = []
    const p = Progress.make("auto", 3, "sft", { write: (s) => out.push(s), now: () => 0, isTTY: true })
    for (let step = 1; step <= 3; step++) p.update(step, "")
    p.done()
    assert.equal(out.filter((l) => l.startsWith("\r")).length, 3)
    assert.equal(out.at(-1), "\n")
    const quiet: Array<string> = []
    const q = Progress.make("quiet", 3, "sft", { write: (s) => quiet.push(s) })
    q.update(1, "")
    q.log("x")
    q.done()
    assert.deepEqual(quiet, [])
  })
})
