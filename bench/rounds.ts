/**
 * npm run bench -- rounds [small|medium ...] [--rounds K] [papo-step's flags: --threads, --steps, --warmup, --no-peer]
 *
 * papo-step K times in a row (default 5), each round ours then the PyTorch peer as papo-step runs them, and per
 * config the spread over the rounds. On a machine shared with other work one run of papo-step moves by 15–30 %
 * (the same code, minutes apart), and its ratios to the peer move with it: a claim about a threshold needs the
 * rounds' distribution, not one run.
 *
 * Prints every line of every round with a `round` field added (1 … K), then one summary line per config:
 * `{config, rounds, ours, peer, ratio_vs_pytorch, ours_le_peer}` where `ours` and `peer` map each of step_ms,
 * rollout_ms, logprob_ms, update_ms, grpo_step_ms, papo_overhead and update_gflops (and ours'
 * update_gflops_executed) to `[min, median, max]` over the rounds, `ratio_vs_pytorch` maps step, rollout and
 * update to the same triple of the rounds' ratios, and `ours_le_peer` counts the rounds whose step took no longer
 * than the peer's (`"6/8"`). Without the peer (`--no-peer`, or no torch) only `ours` is filled.
 */
import { spawnSync } from "node:child_process"
import { args, flag } from "./lib/args.js"
import { quantile } from "./lib/stats.js"

const rounds = flag("--rounds", 5)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${rounds}`)
const passOn = args.filter((a, i) => a !== "--rounds" && args[i - 1] !== "--rounds")

const fields = ["step_ms", "rollout_ms", "logprob_ms", "update_ms", "grpo_step_ms", "papo_overhead", "update_gflops", "update_gflops_executed"] as const
type Line = { readonly config: string; readonly impl?: string; readonly ratio_vs_pytorch?: Record<string, number> } & Partial<Record<(typeof fields)[number], number>>

/** `[min, median, max]` of xs, to 3 places. */
const spread = (xs: ReadonlyArray<number>): [number, number, number] => [0, 0.5, 1].map((q) => +quantile(xs, q).toFixed(3)) as [number, number, number]

const byRound: Array<Array<Line>> = []
for (let r = 1; r <= rounds; r++) {
  console.error(`round ${r} of ${rounds} (${new Date().toISOString().slice(11, 19)} UTC)`)
  const run = spawnSync(process.execPath, ["--import", "tsx", "bench/papo-step.ts", ...passOn], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] })
  if (run.status !== 0) throw new Error(`round ${r}: bench/papo-step.ts exited with ${run.status}`)
  const lines = run.stdout.trim().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Line)
  for (const line of lines) console.log(JSON.stringify({ round: r, ...line }))
  byRound.push(lines)
}

const configs = [...new Set(byRound.flat().map((l) => l.config))]
for (const config of configs) {
  const pick = (which: (l: Line) => boolean) => byRound.map((ls) => ls.find((l) => l.config === config && which(l)))
  const ours = pick((l) => l.step_ms !== undefined && l.impl === undefined && !("measure" in l))
  const peer = pick((l) => l.impl !== undefined)
  const ratios = pick((l) => l.ratio_vs_pytorch !== undefined)
  const summary = (ls: ReadonlyArray<Line | undefined>) => {
    const present = ls.filter((l): l is Line => l !== undefined)
    if (present.length === 0) return null
    return Object.fromEntries(fields.filter((f) => present.every((l) => l[f] !== undefined)).map((f) => [f, spread(present.map((l) => l[f]!))]))
  }
  const paired = ours.flatMap((o, i) => (o && peer[i] ? [[o.step_ms!, peer[i]!.step_ms!] as const] : []))
  const ratioKeys = ["step", "rollout", "update"] as const
  const presentRatios = ratios.filter((l): l is Line => l !== undefined)
  console.log(
    JSON.stringify({
      config,
      rounds,
      ours: summary(ours),
      peer: summary(peer),
      ratio_vs_pytorch: presentRatios.length === 0 ? null : Object.fromEntries(ratioKeys.map((k) => [k, spread(presentRatios.map((l) => l.ratio_vs_pytorch![k]!))])),
      ours_le_peer: paired.length === 0 ? null : `${paired.filter(([o, p]) => o <= p).length}/${paired.length}`
    })
  )
}
