/**
 * The study report: the warm-start checks, the verdict read from 95% t-intervals of paired differences
 * (each arm minus the baseline, per seed), a forest plot of those differences per subset and metric, a
 * comparison table (avg@k overall and per subset, prior-following and perception-error rates, blank- and
 * masked-image accuracy, KL_prcp on the answer tokens), learning curves, training curves of the signals
 * the paper watches, and example rollouts with the original and masked image side by side. Written as
 * `report.html` (self-contained: figures inlined), `figures/*` and `results.json` in the study folder;
 * the table and the verdict also go to the console.
 *
 * Every sentence is computed from the numbers, whatever they are.
 *
 * @since 0.1.0
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { barChart, lineChart, type Series } from "@papo/plot"
import { Cued, type Evaluate } from "@papo/trainer"
import { checksText, type RunOutcome, type StudyResult } from "./Runner.js"
import * as Statistics from "./Statistics.js"

const WARM = "Warm start (SFT)"

/**
 * Mean and sample standard deviation (0 for one value).
 *
 * @category math
 */
export const meanSd = (xs: ReadonlyArray<number>): { readonly mean: number; readonly sd: number; readonly n: number } => {
  const n = xs.length
  const mean = n ? xs.reduce((a, b) => a + b, 0) / n : NaN
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0
  return { mean, sd, n }
}

/**
 * One row of the comparison table: a method's figures across seeds.
 *
 * @category models
 */
export interface Row {
  readonly label: string
  readonly accuracy: ReturnType<typeof meanSd>
  readonly subsets: Readonly<Record<string, ReturnType<typeof meanSd>>>
  readonly perceptionErrorRate: ReturnType<typeof meanSd>
  readonly perceptionErrorShare: ReturnType<typeof meanSd>
  /** Share of conflict responses that followed the cue (NaN without a conflict subset). */
  readonly priorRate: ReturnType<typeof meanSd>
  readonly blankAccuracy: ReturnType<typeof meanSd>
  readonly maskedAccuracy: ReturnType<typeof meanSd>
  readonly klPrcpAnswer: ReturnType<typeof meanSd>
  /** Share of well-formed responses (`<think>…</think>…\boxed{…}`). */
  readonly format: ReturnType<typeof meanSd>
  readonly k: number
}

/**
 * The comparison table's rows: the warm start, then every arm.
 *
 * @category math
 */
export const rows = (result: StudyResult): Array<Row> => {
  const labels = [WARM, ...result.arms]
  return labels.map((label) => {
    const runs = result.runs.filter((r) => (label === WARM ? r.kind === "sft" : r.kind === "rl" && r.label === label))
    const subsetNames = [...new Set(runs.flatMap((r) => Object.keys(r.eval.subsets)))].sort()
    return {
      label,
      accuracy: meanSd(runs.map((r) => r.eval.overall.accuracy)),
      subsets: Object.fromEntries(subsetNames.map((s) => [s, meanSd(runs.flatMap((r) => (r.eval.subsets[s] ? [r.eval.subsets[s]!.accuracy] : [])))])),
      perceptionErrorRate: meanSd(runs.map((r) => r.eval.overall.perceptionErrorRate)),
      perceptionErrorShare: meanSd(runs.map((r) => r.eval.overall.perceptionErrorShare)),
      priorRate: meanSd(runs.map((r) => r.eval.subsets["conflict"]?.priorRate ?? NaN)),
      blankAccuracy: meanSd(runs.map((r) => r.eval.overall.blankAccuracy ?? NaN)),
      maskedAccuracy: meanSd(runs.map((r) => r.eval.overall.maskedAccuracy ?? NaN)),
      klPrcpAnswer: meanSd(runs.map((r) => r.eval.overall.klPrcpAnswer ?? NaN)),
      format: meanSd(runs.map((r) => r.eval.overall.format)),
      k: runs[0]?.eval.k ?? 0
    }
  })
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}` : "–")
const cell = (m: ReturnType<typeof meanSd>) => (m.n > 1 ? `${pct(m.mean)} ± ${pct(m.sd)}` : pct(m.mean))
const relative = (a: number, b: number) => (b !== 0 && Number.isFinite(a) && Number.isFinite(b) ? (a - b) / Math.abs(b) : NaN)
const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : ""}${(100 * x).toFixed(1)}%` : "n/a")

/**
 * The table as text columns (for the console and the HTML).
 *
 * @category math
 */
export const table = (result: StudyResult): { readonly header: Array<string>; readonly body: Array<Array<string>> } => {
  const rs = rows(result)
  const subsets = [...new Set(rs.flatMap((r) => Object.keys(r.subsets)))]
  const base = rs.find((r) => r.label === result.baseline)!
  const hasPrior = subsets.includes("conflict")
  return {
    header: [
      "method",
      `avg@${rs[0]?.k ?? "k"} %`,
      ...subsets.map((s) => `${s === "high" ? "high-vision" : s === "low" ? "low-vision" : s} %`),
      "perception err. %",
      "perception share of errors %",
      ...(hasPrior ? ["prior (conflict) %"] : []),
      "blank img %",
      "masked img %",
      "KL_prcp ans.",
      `Δ acc vs ${result.baseline}`,
      "Δ perception err."
    ],
    body: rs.map((r) => [
      r.label,
      cell(r.accuracy),
      ...subsets.map((s) => (r.subsets[s] ? cell(r.subsets[s]!) : "–")),
      cell(r.perceptionErrorRate),
      cell(r.perceptionErrorShare),
      ...(hasPrior ? [cell(r.priorRate)] : []),
      cell(r.blankAccuracy),
      cell(r.maskedAccuracy),
      Number.isFinite(r.klPrcpAnswer.mean) ? r.klPrcpAnswer.mean.toFixed(4) : "–",
      r.label === base.label ? "" : signed(relative(r.accuracy.mean, base.accuracy.mean)),
      r.label === base.label ? "" : signed(relative(r.perceptionErrorRate.mean, base.perceptionErrorRate.mean))
    ])
  }
}

/**
 * Plain-text table for the console.
 *
 * @category math
 */
export const formatTable = (result: StudyResult): string => {
  const { header, body } = table(result)
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n")
}

/**
 * A figure of an evaluation that arms are compared on: which subset (or `overall`), how to read it, and
 * which direction is good (null: neither, e.g. how much the policy relies on the image).
 *
 * @category models
 */
export interface Measure {
  readonly name: string
  readonly subset: string
  readonly get: (s: Evaluate.SubsetResult) => number
  readonly good: "higher" | "lower" | null
  /** Fractions are shown in points (× 100). */
  readonly fraction: boolean
}

/**
 * The measures of a study whose test split has these subsets.
 *
 * @category math
 */
export const measures = (subsets: ReadonlyArray<string>): Array<Measure> => [
  ...["overall", ...subsets].map((subset): Measure => ({ name: `accuracy, ${subset}`, subset, get: (x) => x.accuracy, good: "higher", fraction: true })),
  ...(subsets.includes("conflict")
    ? [{ name: "prior-following, conflict", subset: "conflict", get: (x: Evaluate.SubsetResult) => x.priorRate ?? NaN, good: "lower" as const, fraction: true }]
    : []),
  { name: "perception errors, overall", subset: "overall", get: (x) => x.perceptionErrorRate, good: "lower", fraction: true },
  { name: "blank-image accuracy, overall", subset: "overall", get: (x) => x.blankAccuracy ?? NaN, good: null, fraction: true },
  { name: "masked-image accuracy, overall", subset: "overall", get: (x) => x.maskedAccuracy ?? NaN, good: null, fraction: true },
  { name: "KL_prcp on answer tokens", subset: "overall", get: (x) => x.klPrcpAnswer ?? NaN, good: null, fraction: false }
]

/**
 * One paired comparison: an arm minus the baseline on one measure, across seeds.
 *
 * @category models
 */
export interface Comparison {
  readonly arm: string
  readonly measure: Measure
  readonly paired: Statistics.Paired
  readonly verdict: "better" | "worse" | "indistinguishable"
}

const subsetOf = (e: Evaluate.EvalResult, subset: string) => (subset === "overall" ? e.overall : e.subsets[subset])

/**
 * Every non-baseline arm against the baseline on every measure, paired by seed.
 *
 * @category math
 */
export const comparisons = (result: StudyResult): Array<Comparison> => {
  const rl = result.runs.filter((r) => r.kind === "rl")
  const subsets = [...new Set(rl.flatMap((r) => Object.keys(r.eval.subsets)))].sort()
  const value = (label: string, seed: number, m: Measure) => {
    const run = rl.find((r) => r.label === label && r.seed === seed)
    const sub = run ? subsetOf(run.eval, m.subset) : undefined
    return sub ? m.get(sub) : NaN
  }
  return result.arms.filter((a) => a !== result.baseline && rl.some((r) => r.label === a)).flatMap((arm) =>
    measures(subsets).map((measure) => {
      const paired = Statistics.paired(result.seeds.map((s) => value(result.baseline, s, measure)), result.seeds.map((s) => value(arm, s, measure)))
      return { arm, measure, paired, verdict: measure.good === null ? "indistinguishable" : Statistics.verdictOf(paired.ci95, measure.good) }
    })
  )
}

const points = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(1)}` : "n/a")
const interval = (c: Comparison) => {
  const f = (x: number) => (c.measure.fraction ? points(x) : Number.isFinite(x) ? x.toFixed(4) : "n/a")
  return c.paired.n > 1 ? `[${f(c.paired.ci95[0])}, ${f(c.paired.ci95[1])}]` : "no interval (one seed)"
}

/**
 * The primary result for `results.json`: the named arm minus the baseline on the named subset's accuracy.
 *
 * @category math
 */
export const primary = (result: StudyResult) => {
  if (result.primary === null) return null
  const { method, subset } = result.primary
  const c = comparisons(result).find((x) => x.arm === method && x.measure.name === `accuracy, ${subset}`)
  const head = {
    metric: `accuracy on the ${subset} test subset (avg@k, fraction)`,
    baseline: result.presets[result.baseline] ?? result.baseline,
    method: result.presets[method] ?? method
  }
  // Not compared (the warm start failed its checks, or the arms did not run): no numbers, and why.
  if (c === undefined) return { ...head, seeds: 0, diffMean: null, ci95: null, verdict: "not compared" }
  return { ...head, seeds: c.paired.n, diffMean: c.paired.mean, ci95: c.paired.ci95, verdict: c.verdict }
}

/**
 * The backend that ran, per arm (the warm start first): one line when every run used the same, else one
 * entry per arm; a run that recorded none (a run folder from before backends were recorded) counts as
 * "not recorded".
 *
 * @example
 * backendsText(result) // => "wasm + native kernels (avx2-fma, 2 threads), model on 2 threads (every run)"
 * backendsText(mixed) // => "Warm start (SFT): wasm + native kernels (avx2-fma, 2 threads); GRPO: cpu; PAPO-G: cpu"
 *
 * @category constructors
 */
export const backendsText = (result: StudyResult): string => {
  const ran = (r: RunOutcome) => r.backend ?? "not recorded"
  const all = [...new Set(result.runs.map(ran))]
  if (all.length <= 1) return `${all[0] ?? "none ran"} (every run)`
  const labels = [...new Set(result.runs.map((r) => (r.kind === "sft" ? WARM : r.label)))]
  return labels.map((label) => {
    const used = [...new Set(result.runs.filter((r) => (r.kind === "sft" ? WARM : r.label) === label).map(ran))]
    return `${label}: ${used.join(" / ")}`
  }).join("; ")
}

const pctOf = (x: number) => `${(100 * x).toFixed(1)}%`

/**
 * What the warm-start checks say, in one sentence.
 *
 * @category math
 */
export const checksSentence = (result: StudyResult): string | null => {
  const c = result.checks
  if (c === null) return null
  const parts = checksText(c)
  return c.valid
    ? `Warm-start checks passed: ${parts}.`
    : `The miniature is invalid for the question: the warm start fails its checks (${parts}), so the arms were not run and nothing is compared.`
}

/**
 * One verdict per non-baseline arm, read from the 95% t-intervals of paired differences: the headline
 * accuracy (the primary subset's, else overall), then prior-following and perception errors.
 *
 * @category math
 */
export const verdicts = (result: StudyResult): Array<string> => {
  const checks = checksSentence(result)
  if (result.checks !== null && !result.checks.valid) return [checks!]
  const rs = rows(result)
  const base = rs.find((r) => r.label === result.baseline)!
  const all = comparisons(result)
  const headline = result.primary?.subset ?? "overall"
  const word = (v: Comparison["verdict"], arm: string, good: string, bad: string) =>
    v === "better" ? `${arm} ${good}` : v === "worse" ? `${arm} ${bad}` : `not distinguishable at this size`
  return rs
    .filter((r) => r.label !== WARM && r.label !== base.label)
    .map((r) => {
      if (r.format.mean < 0.5) {
        return `${r.label} collapsed: only ${pct(r.format.mean)}% of its responses are well formed (avg@${r.k} ${pct(r.accuracy.mean)}% vs ` +
          `${base.label}'s ${pct(base.accuracy.mean)}%), so its perception-error rate says nothing.`
      }
      const mine = all.filter((c) => c.arm === r.label)
      const acc = mine.find((c) => c.measure.name === `accuracy, ${headline}`)!
      const n = acc.paired.n
      const say = (c: Comparison | undefined, what: string, good: string, bad: string) =>
        c === undefined ? "" : ` ${what}: ${points(c.paired.mean)} points, 95% CI ${interval(c)}: ${word(c.verdict, r.label, good, bad)}.`
      const prior = mine.find((c) => c.measure.name === "prior-following, conflict")
      const perception = mine.find((c) => c.measure.name === "perception errors, overall")!
      // The paper's −30.5%: of 200 GRPO-3B failure cases, 61 were perception errors PAPO no longer makes
      // (61/200). The like-for-like figure here: the change in misread responses as a share of the baseline's wrong ones.
      const baseWrong = 1 - base.accuracy.mean
      const relative = baseWrong > 0 ? perception.paired.mean / baseWrong : NaN
      return `${r.label} − ${base.label}, accuracy on the ${headline} test items: ${points(acc.paired.mean)} points, ` +
        `95% CI ${interval(acc)} (${n} seed${n === 1 ? "" : "s"}, paired): ${word(acc.verdict, r.label, "is better", "is worse")}.` +
        say(prior, "Answers following the cue on conflict items", "follows the prior less", "follows the prior more") +
        say(perception, "Misread images (perception errors per response)", "misreads less", "misreads more") +
        ` In the paper's terms (the change in perception errors as a share of the baseline's errors; its −30.5% counts the 61 of 200 ` +
        `GRPO-3B failure cases that were perception errors PAPO no longer makes): ${Number.isFinite(relative) ? `${relative >= 0 ? "+" : "−"}${Math.abs(100 * relative).toFixed(1)}%` : "n/a"}.`
    })
}

/**
 * The forest plot of paired differences (SVG): one row per arm and measure given in points, the mean as a
 * dot and the 95% t-interval as a bar, the zero line marked.
 *
 * @category constructors
 */
export const forestPlot = (cs: ReadonlyArray<Comparison>): string => {
  const rowsOf = cs.filter((c) => c.measure.fraction && Number.isFinite(c.paired.mean))
  const w = 760
  const left = 300
  const right = 20
  const rowH = 22
  const h = 50 + rowH * rowsOf.length
  const xs = rowsOf.flatMap((c) => [c.paired.mean, ...c.paired.ci95].filter(Number.isFinite)).map((x) => 100 * x)
  const span = Math.max(1, ...xs.map(Math.abs)) * 1.1
  const px = (x: number) => left + ((x + span) / (2 * span)) * (w - left - right)
  const esc = (t: string) => t.replace(/[&<>]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[ch]!)
  const colour = (v: Comparison["verdict"]) => (v === "better" ? "#009E73" : v === "worse" ? "#D55E00" : "#0072B2")
  const body = rowsOf.map((c, i) => {
    const y = 30 + rowH * i + rowH / 2
    const [lo, hi] = c.paired.ci95.map((x) => 100 * x) as [number, number]
    const bar = Number.isFinite(lo) ? `<line x1="${px(lo)}" x2="${px(hi)}" y1="${y}" y2="${y}" stroke="${colour(c.verdict)}" stroke-width="2"/>` : ""
    return `<text x="${left - 8}" y="${y + 4}" text-anchor="end">${esc(`${c.arm}: ${c.measure.name}`)}</text>${bar}` +
      `<circle cx="${px(100 * c.paired.mean)}" cy="${y}" r="4" fill="${colour(c.verdict)}"/>`
  }).join("")
  const tick = (x: number) =>
    `<line x1="${px(x)}" x2="${px(x)}" y1="24" y2="${h - 20}" stroke="${x === 0 ? "#444" : "#ddd"}"/><text x="${px(x)}" y="${h - 6}" text-anchor="middle">${x}</text>`
  const step = span > 20 ? 10 : span > 8 ? 5 : span > 4 ? 2 : 1
  const ticks = Array.from({ length: 2 * Math.floor(span / step) + 1 }, (_, i) => (i - Math.floor(span / step)) * step)
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="12">` +
    `<text x="10" y="14">paired difference vs baseline (points): mean and 95% t-interval across seeds</text>` +
    `${ticks.map(tick).join("")}${body}</svg>`
}

/** The curves the paper watches, each with the metric names that may hold it, first found wins. */
const curves: ReadonlyArray<{ readonly file: string; readonly title: string; readonly keys: ReadonlyArray<string>; readonly raw?: boolean }> = [
  { file: "greedy_conflict", title: "greedy accuracy on the conflict test items (learning speed)", keys: ["val/greedy_accuracy/conflict"], raw: true },
  { file: "greedy_uncued", title: "greedy accuracy on the uncued test items", keys: ["val/greedy_accuracy/uncued"], raw: true },
  { file: "reward", title: "training reward (overall = 0.9·accuracy + 0.1·format)", keys: ["reward/overall"] },
  { file: "accuracy", title: "training accuracy", keys: ["reward/accuracy"] },
  { file: "kl_prcp", title: "actor/kl_prcp_loss (= −KL_prcp; a sharp drop is the collapse sign)", keys: ["actor/kl_prcp_loss", "monitor/kl_prcp_loss"] },
  { file: "entropy", title: "entropy of π_θ (mean NLL of sampled tokens)", keys: ["actor/ori_entropy_loss", "actor/entropy_loss"] },
  { file: "aug_entropy", title: "entropy of π_θ on the masked image", keys: ["actor/aug_entropy_loss", "monitor/aug_entropy_loss"] },
  { file: "clipfrac_higher", title: "actor/pg_clipfrac_higher", keys: ["actor/pg_clipfrac_higher"] }
]

const seriesFor = (runs: ReadonlyArray<RunOutcome>, label: string, keys: ReadonlyArray<string>): Series | null => {
  const mine = runs.filter((r) => r.kind === "rl" && r.label === label)
  const key = keys.find((k) => mine.some((r) => r.metrics.some((m) => Number.isFinite(m[k]))))
  if (key === undefined) return null
  const bySteps = new Map<number, Array<number>>()
  for (const r of mine) {
    for (const m of r.metrics) {
      const v = m[key]
      if (typeof m["step"] === "number" && typeof v === "number" && Number.isFinite(v)) {
        bySteps.set(m["step"], [...(bySteps.get(m["step"]) ?? []), v])
      }
    }
  }
  const steps = [...bySteps.keys()].sort((a, b) => a - b)
  const points = steps.map((s) => [s, meanSd(bySteps.get(s)!).mean] as const)
  const band = mine.length > 1 ? steps.map((s) => [s, Math.min(...bySteps.get(s)!), Math.max(...bySteps.get(s)!)] as const) : undefined
  return { name: label, points, ...(band ? { band } : {}) }
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!)

/**
 * The newest logged samples of a run that `keep` accepts, newest step first: the PNG (original | masked)
 * and the record.
 */
const samplesOf = async (dir: string, count: number, keep: (s: { readonly problem: string; readonly answer: string }) => boolean) => {
  const root = join(dir, "samples")
  const steps = (await readdir(root).catch(() => [] as Array<string>)).filter((d) => d.startsWith("step-")).sort().reverse()
  const out: Array<{ png: string; problem: string; answer: string; response: string; reward: number; outcome: string; step: string; image: Buffer }> = []
  for (const step of steps) {
    const lines = (await readFile(join(root, step, "samples.jsonl"), "utf8")).trim().split("\n")
    for (const l of lines) {
      const s = JSON.parse(l) as { png: string; problem: string; answer: string; response: string; reward: number; outcome: string }
      if (out.length < count && keep(s)) out.push({ ...s, step, image: await readFile(join(root, step, s.png)) })
    }
    if (out.length >= count) break
  }
  return out
}

/** What a cued question's image shows and what its cue says. */
const readingOf = (s: { readonly problem: string; readonly answer: string }) => {
  const q = Cued.readQuestion(s.problem, s.answer)
  return q === null ? "" : `; the image shows ${q.digit}${q.cue === null ? "" : `, the cue says ${q.cue}`}`
}

/** A cued-digit question whose cue names another digit than the image's. */
const isConflict = (s: { readonly problem: string; readonly answer: string }) => {
  const q = Cued.readQuestion(s.problem, s.answer)
  return q !== null && q.cue !== null && q.cue !== q.digit
}

const guardSection = (result: StudyResult): string => {
  const rl = result.runs.filter((r) => r.kind === "rl")
  const count = (r: RunOutcome, e: string) => r.events.filter((x) => x["event"] === e).length
  if (rl.every((r) => r.events.length === 0)) {
    return "<p>No warning: no run showed the signs of KL_prcp hacking (KL_prcp up sharply with reward down, clipping up or both entropies up).</p>"
  }
  return `<table><tr><th>run</th><th>seed</th><th>warnings</th><th>collapses</th><th>rollbacks</th><th>first alarm</th></tr>${
    rl.map((r) => {
      const first = r.events.find((e) => e["event"] === "warning" || e["event"] === "collapse")
      return `<tr><td>${escape(r.label)}</td><td>${r.seed}</td><td>${count(r, "warning")}</td><td>${count(r, "collapse")}</td><td>${count(r, "rollback")}</td><td>${
        first ? `step ${String(first["step"])}` : "–"
      }</td></tr>`
    }).join("")
  }</table>`
}

/**
 * Writes `report.html`, `figures/*.png` and `results.json` into `dir`; returns the report's path.
 *
 * @category constructors
 */
export const writeReport = async (dir: string, result: StudyResult): Promise<string> => {
  const figures = join(dir, "figures")
  await mkdir(figures, { recursive: true })
  const images: Array<{ title: string; file: string; png: Buffer }> = []
  const rs = rows(result)
  const subsetNames = [...new Set(rs.flatMap((r) => Object.keys(r.subsets)))]
  const categories = ["overall", ...subsetNames.map((s) => (s === "high" ? "high-vision" : s === "low" ? "low-vision" : s))]
  images.push({
    title: "Held-out accuracy",
    file: "accuracy_by_subset.png",
    png: barChart({
      title: `held-out avg@${rs[0]?.k ?? "k"} accuracy (%)`,
      yLabel: "%",
      categories: [...categories, "perception err."],
      series: rs.map((r) => ({
        name: r.label,
        values: [100 * r.accuracy.mean, ...subsetNames.map((s) => 100 * (r.subsets[s]?.mean ?? NaN)), 100 * r.perceptionErrorRate.mean]
      }))
    })
  })
  for (const c of curves) {
    const series = result.arms.map((a) => seriesFor(result.runs, a, c.keys)).filter((s): s is Series => s !== null)
    if (series.length === 0) continue
    images.push({ title: c.title, file: `${c.file}.png`, png: lineChart({ title: c.title, xLabel: "step", yLabel: c.file, series, smoothing: c.raw ? 0 : 0.6 }) })
  }
  for (const im of images) await writeFile(join(figures, im.file), im.png)

  const examples: Array<string> = []
  const conflictTask = result.runs.some((r) => "conflict" in r.eval.subsets)
  for (const arm of result.arms) {
    const run = result.runs.find((r) => r.kind === "rl" && r.label === arm)
    if (run === undefined) continue
    for (const s of await samplesOf(run.dir, 3, conflictTask ? isConflict : () => true)) {
      examples.push(`<figure><img src="data:image/png;base64,${s.image.toString("base64")}" alt="original | masked">
<figcaption><b>${escape(arm)}</b>, ${escape(s.step)}: <i>${escape(s.problem)}</i> (answer ${escape(s.answer)}${conflictTask ? readingOf(s) : ""})<br>
<code>${escape(s.response)}</code><br>reward ${s.reward.toFixed(2)}, ${escape(s.outcome)}</figcaption></figure>`)
    }
  }
  const { header, body } = table(result)
  const cs = comparisons(result)
  const forest = cs.length > 0 ? forestPlot(cs) : ""
  if (forest !== "") await writeFile(join(figures, "forest.svg"), forest)
  const checks = checksSentence(result)
  const diffTable = cs.length === 0 ? "" : `<table><tr><th>arm − ${escape(result.baseline)}</th><th>measure</th><th>seeds</th><th>mean difference</th><th>95% t-interval</th><th>reading</th></tr>${
    cs.map((c) => `<tr><td>${escape(c.arm)}</td><td>${escape(c.measure.name)}</td><td>${c.paired.n}</td><td>${
      c.measure.fraction ? `${points(c.paired.mean)} pts` : Number.isFinite(c.paired.mean) ? c.paired.mean.toFixed(4) : "n/a"
    }</td><td>${escape(interval(c))}</td><td>${c.measure.good === null ? "(no better direction)" : c.verdict}</td></tr>`).join("")
  }</table>`
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>papo-ts: ${escape(result.name)}</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{max-width:520px}figure{margin:0 0 1em}code{white-space:pre-wrap}
.meta{color:#666;font-size:13px}</style></head><body>
<h1>${escape(result.name)}</h1><p>${escape(result.description)}</p>
<h2>Does PAPO perceive better?</h2><ul>${verdicts(result).map((v) => `<li>${escape(v)}</li>`).join("")}</ul>
${checks === null ? "" : `<h2>Warm-start checks</h2><p>${escape(checks)}</p>`}
${forest === "" ? "" : `<h2>Paired differences</h2>${forest}${diffTable}<p class="meta">Per seed, the arm's figure minus the baseline's (same warm start,
same seed: same data order). Mean and 95% t-interval (Student t with seeds − 1 degrees of freedom); green: the interval excludes zero
in the good direction, orange: in the bad one, blue: it includes zero or the measure has no better direction. Points are percentage points.</p>`}
<h2>Comparison table</h2>
<table><tr>${header.map((h) => `<th>${escape(h)}</th>`).join("")}</tr>
${body.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join("")}</tr>`).join("\n")}</table>
<p class="meta">avg@k: mean accuracy over k sampled responses per held-out question. A perception error is a wrong answer whose
&lt;think&gt; misreads a digit; its rate is over all responses, its share over wrong ones. ${conflictTask
  ? `Conflict items carry a cue word naming another digit than
the image's, agree items one naming the image's, uncued items none; "prior" is the share of conflict responses that state the cue's
digit, blank and masked are accuracies with an all-black and a patch-masked image, KL_prcp is measured on the tokens of the stated
reading and the boxed answer.`
  : "High-vision questions need the image; low-vision ones state part of the answer in the text."} Seeds ${result.seeds.join(", ")}; ± is the standard deviation across seeds.</p>
<h2>Training curves</h2><div class="grid">${images.map((im) => `<figure><img src="data:image/png;base64,${im.png.toString("base64")}" alt="${escape(im.title)}"></figure>`).join("")}</div>
<h2>Example ${conflictTask ? "conflict " : ""}rollouts (original | masked image)</h2>${examples.join("\n") || "<p>No samples were logged.</p>"}
<h2>Collapse guard</h2>${guardSection(result)}
<h2>Runs</h2><table><tr><th>run</th><th>seed</th><th>folder (config.yaml, metrics.jsonl, eval.json)</th><th>backend that ran</th><th>verifier</th><th>minutes</th></tr>
${result.runs.map((r) => `<tr><td>${escape(r.kind === "sft" ? WARM : r.label)}</td><td>${r.seed}</td><td>${escape(r.dir)}</td><td>${escape(r.backend ?? "not recorded")}</td><td>${
  escape(r.verifier ?? "not recorded")
}</td><td>${(r.seconds / 60).toFixed(1)}</td></tr>`).join("\n")}</table>
<p class="meta">code ${escape(result.codeVersion)} · backend ${escape(backendsText(result))} (asked for: ${escape(result.requestedBackend)}) · started ${escape(result.startedAt)} · ${(result.seconds / 60).toFixed(1)} minutes in all.
Rerun: <code>npm run experiment -- ${escape(result.name)}</code>.</p></body></html>`
  const path = join(dir, "report.html")
  await writeFile(path, html)
  const checksJson = result.checks === null ? null : { canSee: result.checks.canSee, followsPrior: result.checks.followsPrior, valid: result.checks.valid }
  await writeFile(
    join(dir, "results.json"),
    JSON.stringify({
      ...result,
      runs: result.runs.map(({ metrics: _m, ...r }) => r),
      table: { header, body },
      verdicts: verdicts(result),
      primary: primary(result),
      checks: checksJson,
      checkThresholds: result.checks?.thresholds ?? null,
      comparisons: cs.map((c) => ({ arm: c.arm, measure: c.measure.name, seeds: c.paired.n, diffs: c.paired.diffs, diffMean: c.paired.mean, ci95: c.paired.ci95, verdict: c.verdict }))
    }, null, 2)
  )
  return path
}
