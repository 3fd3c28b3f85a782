#!/usr/bin/env node
// The `papo` command as npm links it (`npx papo …` from the repository root after `npm ci`): runs the
// compiled trainer, building it first (`tsc -b`, with the packages it references) when it is missing.
import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

const main = new URL("../dist/src/main.js", import.meta.url)
if (!existsSync(main)) {
  console.error("papo: first run, building the trainer (tsc -b) …")
  // typescript exports its package.json, not its bin: find the bin through the former.
  const pkg = createRequire(import.meta.url).resolve("typescript/package.json")
  const tsc = join(dirname(pkg), createRequire(import.meta.url)(pkg).bin.tsc)
  const built = spawnSync(process.execPath, [tsc, "-b", fileURLToPath(new URL("..", import.meta.url))], { stdio: "inherit" })
  if (built.status !== 0) process.exit(built.status ?? 1)
}
await import(main.href)
