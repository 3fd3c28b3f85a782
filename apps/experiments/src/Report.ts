/**
 * The study report: a comparison table (avg@k overall and on the high- and low-vision-dependency
 * subsets, perception-error rates), training curves of the signals the paper watches, and example
 * rollouts with the original and masked image side by side. Written as `report.html` (self-contained:
 * figures inlined), `figures/*.png` and `results.json` in the study folder; the table also goes to the
 * console.
 *
 * The verdict sentence is computed from the numbers, whatever they are.
 *
 * @since 0.1.0
 */
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { barChart, lineChart, type Series } from "@papo/plot"
import type { RunOutcome, StudyResult } from "./Runner.js"

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
  return {
    header: [
      "method",
      `avg@${rs[0]?.k ?? "k"} %`,
      ...subsets.map((s) => `${s === "high" ? "high-vision" : s === "low" ? "low-vision" : s} %`),
      "perception err. %",
      "perception share of errors %",
      `Δ acc vs ${result.baseline}`,
      "Δ perception err."
    ],
    body: rs.map((r) => [
      r.label,
      cell(r.accuracy),
      ...subsets.map((s) => (r.subsets[s] ? cell(r.subsets[s]!) : "–")),
      cell(r.perceptionErrorRate),
      cell(r.perceptionErrorShare),
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
 * One sentence per non-baseline arm: does it beat the baseline, and does it make fewer perception errors?
 *
 * @category math
 */
export const verdicts = (result: StudyResult): Array<string> => {
  const rs = rows(result)
  const base = rs.find((r) => r.label === result.baseline)!
  const seeds = result.seeds.length
  return rs
    .filter((r) => r.label !== WARM && r.label !== base.label)
    .map((r) => {
      const dAcc = r.accuracy.mean - base.accuracy.mean
      const spread = Math.max(r.accuracy.sd, base.accuracy.sd)
      const clear = seeds > 1 ? Math.abs(dAcc) > spread : false
      const acc = dAcc > 0 ? "beats" : dAcc < 0 ? "does not beat" : "ties"
      const per = r.perceptionErrorRate.mean < base.perceptionErrorRate.mean ? "fewer" : "no fewer"
      if (r.format.mean < 0.5) {
        return `${r.label} collapsed: only ${pct(r.format.mean)}% of its responses are well formed (avg@${r.k} ${pct(r.accuracy.mean)}% vs ` +
          `${base.label}'s ${pct(base.accuracy.mean)}%), so its perception-error rate says nothing.`
      }
      return `${r.label} ${acc} ${base.label}: avg@${r.k} ${pct(r.accuracy.mean)}% vs ${pct(base.accuracy.mean)}% (${signed(relative(r.accuracy.mean, base.accuracy.mean))} relative` +
        `${seeds > 1 ? `, ${clear ? "larger" : "not larger"} than the spread across ${seeds} seeds` : ", one seed: not significant on its own"}), ` +
        `with ${per} perception errors: ${pct(r.perceptionErrorRate.mean)}% vs ${pct(base.perceptionErrorRate.mean)}% of responses ` +
        `(${signed(relative(r.perceptionErrorRate.mean, base.perceptionErrorRate.mean))}; the paper: −30.5%).`
    })
}

/** The curves the paper watches, each with the metric names that may hold it, first found wins. */
const curves: ReadonlyArray<{ readonly file: string; readonly title: string; readonly keys: ReadonlyArray<string> }> = [
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

/** The newest logged samples of a run: the PNG (original | masked) and the record. */
const lastSamples = async (dir: string, count: number) => {
  const root = join(dir, "samples")
  const steps = (await readdir(root).catch(() => [] as Array<string>)).filter((d) => d.startsWith("step-")).sort()
  const last = steps.at(-1)
  if (last === undefined) return []
  const lines = (await readFile(join(root, last, "samples.jsonl"), "utf8")).trim().split("\n").slice(0, count)
  return Promise.all(lines.map(async (l) => {
    const s = JSON.parse(l) as { png: string; problem: string; answer: string; response: string; reward: number; outcome: string }
    return { ...s, step: last, image: await readFile(join(root, last, s.png)) }
  }))
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
    images.push({ title: c.title, file: `${c.file}.png`, png: lineChart({ title: c.title, xLabel: "step", yLabel: c.file, series, smoothing: 0.6 }) })
  }
  for (const im of images) await writeFile(join(figures, im.file), im.png)

  const examples: Array<string> = []
  for (const arm of result.arms) {
    const run = result.runs.find((r) => r.kind === "rl" && r.label === arm)
    if (run === undefined) continue
    for (const s of await lastSamples(run.dir, 3)) {
      examples.push(`<figure><img src="data:image/png;base64,${s.image.toString("base64")}" alt="original | masked">
<figcaption><b>${escape(arm)}</b>, ${escape(s.step)}: <i>${escape(s.problem)}</i> (answer ${escape(s.answer)})<br>
<code>${escape(s.response)}</code><br>reward ${s.reward.toFixed(2)}, ${escape(s.outcome)}</figcaption></figure>`)
    }
  }
  const { header, body } = table(result)
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>papo-ts: ${escape(result.name)}</title>
<style>body{font:15px/1.45 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f3f3f3}.grid{display:flex;flex-wrap:wrap;gap:12px}.grid img{max-width:520px}figure{margin:0 0 1em}code{white-space:pre-wrap}
.meta{color:#666;font-size:13px}</style></head><body>
<h1>${escape(result.name)}</h1><p>${escape(result.description)}</p>
<h2>Does PAPO perceive better?</h2><ul>${verdicts(result).map((v) => `<li>${escape(v)}</li>`).join("")}</ul>
<table><tr>${header.map((h) => `<th>${escape(h)}</th>`).join("")}</tr>
${body.map((r) => `<tr>${r.map((c) => `<td>${escape(c)}</td>`).join("")}</tr>`).join("\n")}</table>
<p class="meta">avg@k: mean accuracy over k sampled responses per held-out question. A perception error is a wrong answer whose
&lt;think&gt; misreads a digit; its rate is over all responses, its share over wrong ones. High-vision questions need the image;
low-vision ones state part of the answer in the text. Seeds ${result.seeds.join(", ")}; ± is the standard deviation across seeds.</p>
<h2>Training curves</h2><div class="grid">${images.map((im) => `<figure><img src="data:image/png;base64,${im.png.toString("base64")}" alt="${escape(im.title)}"></figure>`).join("")}</div>
<h2>Example rollouts (original | masked image)</h2>${examples.join("\n") || "<p>No samples were logged.</p>"}
<h2>Collapse guard</h2>${guardSection(result)}
<h2>Runs</h2><table><tr><th>run</th><th>seed</th><th>folder (config.yaml, metrics.jsonl, eval.json)</th><th>minutes</th></tr>
${result.runs.map((r) => `<tr><td>${escape(r.kind === "sft" ? WARM : r.label)}</td><td>${r.seed}</td><td>${escape(r.dir)}</td><td>${(r.seconds / 60).toFixed(1)}</td></tr>`).join("\n")}</table>
<p class="meta">code ${escape(result.codeVersion)} · backend ${escape(result.backend)} · started ${escape(result.startedAt)} · ${(result.seconds / 60).toFixed(1)} minutes in all.
Rerun: <code>npm run experiment -- ${escape(result.name)}</code>.</p></body></html>`
  const path = join(dir, "report.html")
  await writeFile(path, html)
  await writeFile(join(dir, "results.json"), JSON.stringify({ ...result, runs: result.runs.map(({ metrics: _m, ...r }) => r), table: { header, body }, verdicts: verdicts(result) }, null, 2))
  return path
}
