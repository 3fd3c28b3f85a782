import assert from "node:assert/strict"
import { mkdtemp, readFile, readdir } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { test } from "node:test"
import { backendsText, formatTable, primary, rows, verdicts, writeReport } from "../src/Report.js"
import type { RunOutcome, StudyResult } from "../src/Runner.js"

const subset = (accuracy: number, perceptionErrorRate: number, priorRate = 0) => ({
  questions: 10, responses: 80, accuracy, format: accuracy < 0.01 ? 0.1 : 1, perceptionErrorRate, perceptionErrorShare: perceptionErrorRate / Math.max(1e-9, 1 - accuracy),
  priorRate, blankAccuracy: 0.1, maskedAccuracy: accuracy / 2, klPrcpAnswer: 0.5,
  outcomes: { correct: 0, prior: 0, perception: 0, reasoning: 0, format: 0, unclassified: 0 }
})
const subsetsOf = (task: "digits" | "cued", acc: number, per: number): Record<string, ReturnType<typeof subset>> =>
  task === "digits"
    ? { high: subset(acc - 0.1, per), low: subset(acc + 0.1, per / 2) }
    : { conflict: subset(acc - 0.2, per, per / 2), agree: subset(acc + 0.1, per / 4), uncued: subset(acc, per / 2) }
const outcome = (kind: "sft" | "rl", label: string, seed: number, acc: number, per: number, task: "digits" | "cued" = "digits"): RunOutcome => ({
  kind, label, seed, dir: `/nonexistent/${label}-${seed}`, seconds: 60, backend: "wasm + native kernels (avx2-fma, 2 threads)", verifier: "mathruler",
  eval: { step: 10, split: task, k: 8, temperature: 1, probeK: 2, overall: subset(acc, per), subsets: subsetsOf(task, acc, per), examples: [] },
  events: label === "PAPO-G" ? [{ event: "warning", step: 2 }] : [],
  metrics: kind === "rl" ? [1, 2, 3].map((step) => ({ step, "reward/overall": acc * step / 3, "actor/kl_prcp_loss": -0.01 * step, "actor/pg_clipfrac_higher": 0.01 })) : []
})
const study = (papoAcc: number, papoPer: number, seeds = [1], task: "digits" | "cued" = "digits"): StudyResult => ({
  name: "t", description: "test", baseline: "GRPO", arms: ["GRPO", "PAPO-G"], seeds,
  runs: [
    outcome("sft", "SFT", 0, 0.3, 0.4, task),
    ...seeds.flatMap((s) => [outcome("rl", "GRPO", s, 0.5, 0.3, task), outcome("rl", "PAPO-G", s, papoAcc + s / 1000, papoPer, task)])
  ],
  checks: null, primary: task === "cued" ? { method: "PAPO-G", subset: "conflict" } : null, presets: { GRPO: "grpo", "PAPO-G": "papo-g" },
  codeVersion: "abc", requestedBackend: "auto", startedAt: "2026-01-01T00:00:00Z", seconds: 300
})
const checked = (canSee: number, followsPrior: number): StudyResult => ({
  ...study(0.6, 0.2, [1, 2, 3], "cued"),
  checks: { canSee, followsPrior, valid: canSee >= 0.8 && followsPrior >= 0.6, thresholds: { canSee: 0.8, followsPrior: 0.6 } }
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

test("the verdict is read from the paired interval, including when PAPO loses", () => {
  // One seed: a difference but no interval, so nothing is concluded.
  assert.match(verdicts(study(0.6, 0.2))[0]!, /^PAPO-G − GRPO, accuracy on the overall test items: \+10\.1 points, 95% CI no interval \(one seed\) \(1 seed, paired\): not distinguishable at this size/)
  // Three seeds with differences 0.101, 0.102, 0.103: the interval excludes zero.
  const better = verdicts(study(0.6, 0.2, [1, 2, 3]))[0]!
  assert.match(better, /\+10\.2 points, 95% CI \[\+10\.0, \+10\.4\] \(3 seeds, paired\): PAPO-G is better/)
  assert.match(better, /Misread images \(perception errors per response\): −10\.0 points, 95% CI \[−10\.0, −10\.0\]: PAPO-G misreads less/)
  assert.match(verdicts(study(0.4, 0.35, [1, 2, 3]))[0]!, /: PAPO-G is worse\..*PAPO-G misreads more/)
  // A collapsed run has no perception errors only because nothing it says is well formed: the verdict says so.
  assert.match(verdicts(study(0, 0))[0]!, /^PAPO-G collapsed: only 10\.0% of its responses are well formed/)
  assert.equal(rows(study(0.6, 0.2, [1, 2, 3]))[2]!.accuracy.n, 3)
})

test("the primary result: conflict accuracy, PAPO-G − GRPO, with its hand-computed t-interval", () => {
  // Differences 0.101, 0.102, 0.103: mean 0.102, sd 0.001, t₀.₉₇₅(2) = 4.302653, half width 0.0024841.
  const p = primary(study(0.6, 0.2, [1, 2, 3], "cued"))!
  assert.equal(p.baseline, "grpo")
  assert.equal(p.method, "papo-g")
  assert.equal(p.seeds, 3)
  assert.ok(Math.abs(p.diffMean! - 0.102) < 1e-12)
  assert.ok(Math.abs(p.ci95![0] - 0.0995159) < 1e-6 && Math.abs(p.ci95![1] - 0.1044841) < 1e-6, String(p.ci95))
  assert.match(verdicts(study(0.6, 0.2, [1, 2, 3], "cued"))[0]!, /accuracy on the conflict test items: \+10\.2 points/)
  assert.match(verdicts(study(0.6, 0.2, [1, 2, 3], "cued"))[0]!, /Answers following the cue on conflict items: −5\.0 points/)
  assert.equal(primary(study(0.6, 0.2)), null)
  const invalid = { ...checked(0.5, 0.7), runs: checked(0.5, 0.7).runs.filter((r) => r.kind === "sft") }
  assert.deepEqual(primary(invalid), {
    metric: "accuracy on the conflict test subset (avg@k, fraction)", baseline: "grpo", method: "papo-g", seeds: 0, diffMean: null, ci95: null, verdict: "not compared"
  })
})

test("failed warm-start checks replace the comparison with the sentence that the miniature is invalid", () => {
  assert.deepEqual(verdicts(checked(0.5, 0.7)).length, 1)
  assert.match(verdicts(checked(0.5, 0.7))[0]!, /^The miniature is invalid for the question: .*uncued accuracy 50\.0% \(needs ≥ 80\.0%/)
  assert.match(verdicts(checked(0.9, 0.7))[0]!, /^PAPO-G − GRPO/)
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
  const json = JSON.parse(await readFile(join(dir, "results.json"), "utf8")) as { verdicts: Array<string>; codeVersion: string; primary: unknown; checks: unknown }
  assert.equal(json.codeVersion, "abc")
  assert.equal(json.verdicts.length, 1)
  assert.equal(json.primary, null)
  assert.equal(json.checks, null)
})

test("the report names the backend that ran: once when every run shares it, else per arm", async () => {
  const same = study(0.6, 0.2, [1, 2])
  assert.equal(backendsText(same), "wasm + native kernels (avx2-fma, 2 threads) (every run)")
  const mixed: StudyResult = {
    ...same,
    runs: same.runs.map((r) => (r.label === "PAPO-G" ? { ...r, backend: r.seed === 1 ? "cpu" : null } : r))
  }
  assert.equal(
    backendsText(mixed),
    "Warm start (SFT): wasm + native kernels (avx2-fma, 2 threads); GRPO: wasm + native kernels (avx2-fma, 2 threads); PAPO-G: cpu / not recorded"
  )
  const html = await readFile(await writeReport(await mkdtemp(join(tmpdir(), "papo-report-")), mixed), "utf8")
  assert.match(html, /backend Warm start \(SFT\): wasm \+ native kernels .*PAPO-G: cpu \/ not recorded \(asked for: auto\)/)
  assert.match(html, /<td>PAPO-G<\/td><td>1<\/td><td>[^<]*<\/td><td>cpu<\/td><td>mathruler<\/td>/)
})

test("the cued report: checks, forest plot, primary and checks in results.json", async () => {
  const dir = await mkdtemp(join(tmpdir(), "papo-report-"))
  const html = await readFile(await writeReport(dir, checked(0.9, 0.7)), "utf8")
  assert.match(html, /<h2>Warm-start checks<\/h2><p>Warm-start checks passed: uncued accuracy 90\.0%/)
  assert.match(html, /<svg [^>]*>.*PAPO-G: accuracy, conflict/)
  assert.ok((await readdir(join(dir, "figures"))).includes("forest.svg"))
  const json = JSON.parse(await readFile(join(dir, "results.json"), "utf8"))
  assert.deepEqual(json.checks, { canSee: 0.9, followsPrior: 0.7, valid: true })
  assert.deepEqual(Object.keys(json.primary).slice(0, 6), ["metric", "baseline", "method", "seeds", "diffMean", "ci95"])
  assert.equal(json.primary.seeds, 3)
})
