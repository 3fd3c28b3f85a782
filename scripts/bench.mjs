// npm run bench -- <name> [args...]: runs bench/<name>.ts, which prints one JSON object per line.
import { spawnSync } from "node:child_process"
import { existsSync, readdirSync } from "node:fs"

const [name, ...rest] = process.argv.slice(2)
const available = readdirSync("bench").filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3))
if (name === undefined || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name> [args]; available: ${available.join(", ")}`)
  process.exit(2)
}
const file = `bench/${name}.ts`
if (!existsSync(file)) process.exit(2)
const r = spawnSync(process.execPath, ["--import", "tsx", file, ...rest], { stdio: "inherit" })
process.exit(r.status ?? 1)
