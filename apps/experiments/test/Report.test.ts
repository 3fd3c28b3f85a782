import assert from "node:assert/strict"
import { mkdtemp, readFile, readdir } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { formatTable, rows, verdicts, writeReport } from "../src/Report.js"
import type { RunOutcome, StudyResult } from "../src/Runner.js"

const subset = (accuracy: number, perceptionErrorRate: number) => ({
  questions: 10, responses: 80, accuracy, format: accuracy < 0.01 ? 0.1 : 1, perceptionErrorRate, perceptionErrorShare: perceptionErrorRate / Math.max(1e-9, 1 - accuracy),
  outcomes: { correct: 0, perception: 0, reasoning: 0, format: 0, unclassified: 0 }
})
const outcome = (kind: "sft" | "rl", label: string, seed: number, acc: number, per: number): RunOutcome => ({
  kind, label, seed, dir: `/nonexistent/${label}-${seed}`, seconds: 60,
  eval: { step: 10, split: "digits", k: 8, temperature: 1, overall: subset(acc, per), subsets: { high: subset(acc - 0.1, per), low: subset(acc + 0.1, per / 2) }, examples: [] },
  events: label === "PAPO-G" ? [{ event: "warning", step: 2 }] : [],
  metrics: kind === "rl" ? [1, 2, 3].map((step) => ({ step, "reward/overall": acc * step / 3, "actor/kl_prcp_loss": -0.01 * step, "actor/pg_clipfrac_higher": 0.01 })) : []
})
const study = (papoAcc: number, papoPer: number, seeds = [1]): StudyResult => ({
  name: "t", description: "test", baseline: "GRPO", arms: ["GRPO", "PAPO-G"], seeds,
  runs: seeds.flatMap((s) => [outcome("sft", "SFT", s, 0.3, 0.4), outcome("rl", "GRPO", s, 0.5, 0.3), outcome("rl", "PAPO-G", s, papoAcc + s / 1000, papoPer)]),
  codeVersion: "abc", backend: "wasm", startedAt: "2026-01-01T00:00:00Z", seconds: 300
})

test("the table has the warm start and every arm, with subsets and changes relative to the baseline", () => {
  const r = rows(study(0.6, 0.2))
  assert.deepEqual(r.map((x) => x.label), ["Warm start (SFT)", "GRPO", "PAPO-G"])
  const text = formatTable(study(0.6, 0.2))
  assert.match(text, /high-vision %/)
  assert.match(text, /PAPO-G\s+60\.1/)
  assert.match(text, /\+20\.2%/) // (0.601 − 0.5) / 0.5
  assert.match(text, /-33\.3%/) // perception errors 0.3 → 0.2
})

test("the verdict says what the numbers say, including when PAPO loses", () => {
  assert.match(verdicts(study(0.6, 0.2))[0]!, /^PAPO-G beats GRPO: .* with fewer perception errors/)
  assert.match(verdicts(study(0.4, 0.35))[0]!, /^PAPO-G does not beat GRPO: .* with no fewer perception errors/)
  assert.match(verdicts(study(0.6, 0.2))[0]!, /one seed: not significant on its own/)
  // A collapsed run has no perception errors only because nothing it says is well formed: the verdict says so.
  assert.match(verdicts(study(0, 0))[0]!, /^PAPO-G collapsed: only 10\.0% of its responses are well formed/)
  const multi = verdicts(study(0.6, 0.2, [1, 2, 3]))[0]!
  assert.match(multi, /larger than the spread across 3 seeds/)
  assert.equal(rows(study(0.6, 0.2, [1, 2, 3]))[2]!.accuracy.n, 3)
})

test("the report is written: HTML with the table, inlined figures, results.json", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-report-"))
  const path = await writeReport(dir, study(0.6, 0.2))
  const html = await readFile(path, "utf8")
  assert.match(html, /<h2>Does PAPO perceive better\?<\/h2>/)
  assert.match(html, /<td>PAPO-G<\/td><td>1<\/td><td>1<\/td><td>0<\/td><td>0<\/td><td>step 2<\/td>/)
  assert.ok((html.match(/data:image\/png;base64,/g) ?? []).length >= 4)
  const figures = await readdir(join(dir, "figures"))
  assert.ok(figures.includes("accuracy_by_subset.png") && figures.includes("kl_prcp.png") && figures.includes("reward.png"))
  const json = JSON.parse(await readFile(join(dir, "results.json"), "utf8")) as { verdicts: Array<string>; codeVersion: string }
  assert.equal(json.codeVersion, "abc")
  assert.equal(json.verdicts.length, 1)
})
