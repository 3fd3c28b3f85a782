// Runs every test file of the monorepo in one node:test process tree, so node's closing summary
// (# tests, # pass, # fail) is the last thing printed. Node 20 has no glob arguments for --test.
import { spawnSync } from "node:child_process"
import { readdirSync, existsSync } from "node:fs"
import { join } from "node:path"

const roots = ["packages", "apps"].flatMap((d) =>
  existsSync(d) ? readdirSync(d).map((p) => join(d, p, "test")) : []
)
roots.push("test")
const files = roots
  .filter((d) => existsSync(d))
  .flatMap((d) => readdirSync(d).filter((f) => f.endsWith(".test.ts")).map((f) => join(d, f)))
  .sort()
const only = process.argv.slice(2)
const selected = only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files
// tfjs test files each take 400-800 MB; two cores: run them one at a time.
const r = spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-concurrency=1", ...selected], {
  stdio: "inherit",
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: "1" }
})
process.exit(r.status ?? 1)
