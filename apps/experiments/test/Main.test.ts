import assert from "node:assert/strict"
import { spawnSync } from "node:child_process"
import { mkdir, mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { test } from "node:test"

// The command line in a child process: how a failure is printed, and the exit code.
const main = resolve("apps/experiments/dist/src/main.js")
const study = "description: t\nseeds: [1]\nsft: { sft: { steps: 1 } }\narms:\n  - { label: GRPO, preset: grpo }\n"
const run = async (args: ReadonlyArray<string>, prepare: (dir: string) => Promise<void> = async () => {}) => {
  const dir = await mkdtemp(join(tmpdir(), "papo-experiment-"))
  await writeFile(join(dir, "t.yaml"), study)
  await prepare(dir)
  return spawnSync(process.execPath, [main, "t.yaml", ...args], { cwd: dir, encoding: "utf8" })
}

test("a study that cannot go on says which file and why, and exits 1", async () => {
  const r = await run([], async (dir) => {
    await mkdir(join(dir, "runs", "t", "seed-1", "sft"), { recursive: true })
    await writeFile(join(dir, "runs", "t", "seed-1", "sft", "done.json"), "{\"eval\":")
  })
  assert.equal(r.status, 1, r.stderr)
  assert.match(r.stderr, /^the study stopped: runs\/t\/seed-1\/sft\/done\.json: not JSON: /m)
})

test("a bad override is refused before any run, naming the key, with exit 2", async () => {
  const r = await run(["worker.reward.mode=nope"])
  assert.equal(r.status, 2)
  assert.match(r.stderr, /"worker\.reward\.mode": Expected "mathruler" \| "math-verify", got "nope"/)
})
