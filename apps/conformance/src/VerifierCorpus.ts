/**
 * The math-answer verifier conformance corpus (`test/fixtures/verifier/cases-public.json`, schema in the
 * README beside it): every case is graded in both of @papo/reward's modes on a worker pool with a hard
 * time limit, and compared with the verdicts the real MathRuler and Math-Verify gave.
 *
 * Counting follows the corpus README: `mathruler` verdicts are compared when the reference status is
 * `ok`; `math_verify` verdicts when the status is `ok` or `gold_unparseable` (expected null) and the
 * library's own timeout did not fire. `adversarial` cases only have to be answered within the limit;
 * their verdict differences are listed as notes and do not count.
 */
import { Grader, VerifierPool } from "@papo/reward"

/** The `format` field that identifies the corpus. */
export const corpusFormat = "math-answer-verifier conformance corpus"

/** One case (only the fields used here). */
export interface CorpusCase {
  readonly id: string
  readonly source: string
  readonly category: string
  readonly gold: string
  readonly response: string
  readonly mathruler: { readonly status: string; readonly accuracy: number | null; readonly format: number | null; readonly overall: number | null }
  readonly math_verify: { readonly status: string; readonly correct: boolean | null; readonly internal_timeout?: boolean | null }
}

/** A corpus file. */
export interface Corpus {
  readonly format: string
  readonly cases: ReadonlyArray<CorpusCase>
}

/** Tells the corpus apart from other JSON (by its `format` field). */
export const isVerifierCorpus = (u: unknown): u is Corpus =>
  typeof u === "object" && u !== null && "format" in u && (u as { format: unknown }).format === corpusFormat &&
  "cases" in u && Array.isArray((u as { cases: unknown }).cases)

/** What @papo/reward answered for one case, in the `--out` shape. */
export interface CaseAnswer {
  readonly mathruler: { readonly accuracy: number; readonly format: number; readonly overall: number }
  readonly math_verify: { readonly correct: boolean | null }
}

type ModeName = "mathruler" | "math-verify"

/** One tally of agreement. */
interface Tally {
  agree: number
  total: number
}

/** The outcome of a corpus run. */
export interface CorpusReport {
  /** FAIL lines (disagreements and timeouts) and NOTE lines (adversarial verdict differences), in case order. */
  readonly lines: ReadonlyArray<string>
  /** Agreement per mode, source and category (adversarial included, for information). */
  readonly agreement: Readonly<Record<ModeName, Readonly<Record<string, Readonly<Record<string, Tally>>>>>>
  readonly answers: Readonly<Record<string, CaseAnswer>>
  readonly passed: number
  readonly failed: number
}

const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9
const q = (s: string) => JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s)
const extractedOf = (o: Grader.Outcome) => (o._tag === "Correct" || o._tag === "Incorrect" ? ` (extracted ${q(o.extracted)})` : ` (${o._tag})`)

/** Grades every case in both modes and compares with the references. */
export const runVerifierCorpus = async (corpus: Corpus, timeoutMs: number): Promise<CorpusReport> => {
  const pool = VerifierPool.create({ timeoutMs })
  try {
    const cases = corpus.cases
    const [mr, mv] = await Promise.all([
      pool.scoreBatch(cases, { mode: "mathruler" }),
      pool.gradeBatch(cases, { mode: "math-verify" })
    ])
    const lines: Array<string> = []
    const agreement: Record<ModeName, Record<string, Record<string, Tally>>> = { mathruler: {}, "math-verify": {} }
    const answers: Record<string, CaseAnswer> = {}
    let passed = 0
    let failed = 0
    const tally = (mode: ModeName, c: CorpusCase, agree: boolean) => {
      const bySource = (agreement[mode][c.source] ??= {})
      for (const key of ["*", c.category]) {
        const t = (bySource[key] ??= { agree: 0, total: 0 })
        t.total++
        if (agree) t.agree++
      }
    }
    cases.forEach((c, i) => {
      const s = mr[i]!
      const o = mv[i]!
      const correct = o._tag === "Correct" ? true : o._tag === "Invalid" && o.reason.startsWith("gold answer does not parse") ? null : false
      answers[c.id] = { mathruler: { accuracy: s.accuracy, format: s.format, overall: s.overall }, math_verify: { correct } }
      const adversarial = c.source === "adversarial"
      // mathruler
      const e = c.mathruler
      if (s.outcome._tag === "TimedOut") {
        lines.push(`FAIL ${c.id} [mathruler]: timed out after ${timeoutMs} ms`)
        failed++
      } else if (e.status === "ok" && e.accuracy !== null && e.format !== null && e.overall !== null) {
        const agree = close(e.accuracy, s.accuracy) && close(e.format, s.format) && close(e.overall, s.overall)
        tally("mathruler", c, agree)
        if (!agree) {
          lines.push(`${adversarial ? "NOTE" : "FAIL"} ${c.id} [mathruler]: expected accuracy=${e.accuracy} format=${e.format} overall=${e.overall}, got accuracy=${s.accuracy} format=${s.format} overall=${s.overall}${extractedOf(s.outcome)}`)
        }
        if (agree || adversarial) passed++
        else failed++
      } else passed++
      // math-verify
      const v = c.math_verify
      const comparable = (v.status === "ok" || v.status === "gold_unparseable") && v.internal_timeout !== true
      if (o._tag === "TimedOut") {
        lines.push(`FAIL ${c.id} [math-verify]: timed out after ${timeoutMs} ms`)
        failed++
      } else if (comparable) {
        const expected = v.status === "gold_unparseable" ? null : v.correct
        const agree = expected === correct
        tally("math-verify", c, agree)
        if (!agree) lines.push(`${adversarial ? "NOTE" : "FAIL"} ${c.id} [math-verify]: expected ${expected}, got ${correct}${extractedOf(o)}`)
        if (agree || adversarial) passed++
        else failed++
      } else passed++
    })
    return { lines, agreement, answers, passed, failed }
  } finally {
    await pool.close()
  }
}

const pct = (t: Tally) => (t.total === 0 ? "n/a" : `${((100 * t.agree) / t.total).toFixed(2)}%`)

/** The agreement targets of issue 7: overall and worst-source minimums per mode. */
export const targets: Readonly<Record<ModeName, { readonly overall: number; readonly perSource: number }>> = {
  mathruler: { overall: 0.99, perSource: 0.95 },
  "math-verify": { overall: 0.97, perSource: 0.9 }
}

/** Agreement table lines (per mode: overall without adversarial, then each source and its categories). */
export const formatAgreement = (report: CorpusReport): Array<string> => {
  const out: Array<string> = []
  for (const mode of ["mathruler", "math-verify"] as const) {
    const bySource = report.agreement[mode]
    const overall: Tally = { agree: 0, total: 0 }
    let worst = 1
    for (const [source, cats] of Object.entries(bySource)) {
      if (source === "adversarial") continue
      const t = cats["*"]!
      overall.agree += t.agree
      overall.total += t.total
      worst = Math.min(worst, t.total === 0 ? 1 : t.agree / t.total)
    }
    const target = targets[mode]
    const met = overall.total > 0 && overall.agree / overall.total >= target.overall && worst >= target.perSource
    out.push(`agreement [${mode}] overall (without adversarial): ${overall.agree}/${overall.total} ${pct(overall)}; target ≥ ${target.overall * 100}% overall and ≥ ${target.perSource * 100}% per source: ${met ? "met" : "NOT met"}`)
    for (const source of Object.keys(bySource).sort()) {
      const cats = bySource[source]!
      out.push(`  ${source}: ${cats["*"]!.agree}/${cats["*"]!.total} ${pct(cats["*"]!)}${source === "adversarial" ? " (informational)" : ""}`)
      for (const cat of Object.keys(cats).filter((k) => k !== "*").sort()) out.push(`    ${cat}: ${cats[cat]!.agree}/${cats[cat]!.total} ${pct(cats[cat]!)}`)
    }
  }
  return out
}
