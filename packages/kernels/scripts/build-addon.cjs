// The package's install script: builds the native addon with node-gyp, quietly. Its output goes to
// build.log; a failed build (no compiler, no headers) leaves the package without the addon, and
// @papo/kernels then reports itself unavailable and everything runs on wasm. Never fails the install.
const { spawnSync } = require("node:child_process")
const { writeFileSync } = require("node:fs")
const { join } = require("node:path")

const root = join(__dirname, "..")
// npm runs install scripts with the path of its bundled node-gyp in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp
const r = gyp
  ? spawnSync(process.execPath, [gyp, "rebuild"], { cwd: root, encoding: "utf8" })
  : spawnSync("node-gyp", ["rebuild"], { cwd: root, encoding: "utf8", shell: process.platform === "win32" })
const log = [`exit ${r.status}${r.error ? ` (${r.error.message})` : ""}`, r.stdout ?? "", r.stderr ?? ""].join("\n")
try {
  writeFileSync(join(root, "build.log"), log)
} catch {
  // a read-only install directory: the status line of @papo/kernels still says the addon is missing
}
process.exit(0)
