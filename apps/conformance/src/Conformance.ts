/**
 * Runs every case of a golden file against the project's own functions and reports, per case, PASS or
 * FAIL with what differed and by how much.
 */
import { runners } from "./Categories.js"
import { compare, type GoldenFile } from "./Golden.js"

/** The verdict on one case. */
export interface CaseResult {
  readonly name: string
  readonly category: string
  readonly passed: boolean
  /** Empty for a pass; otherwise what differed (at most a few places) or why it could not run. */
  readonly detail: string
}

const MAX_SHOWN = 3

/** Runs one golden file, case by case, in order. */
export const runGolden = async (file: GoldenFile): Promise<Array<CaseResult>> => {
  const results: Array<CaseResult> = []
  for (const c of file.cases) {
    const runner = runners[c.category]
    if (runner === undefined) {
      results.push({ name: c.name, category: c.category, passed: false, detail: `category "${c.category}" not implemented` })
      continue
    }
    try {
      const actual = await runner(c.hyperparameters, c.inputs)
      const diffs = compare(actual, c.outputs, file.tolerance)
      const shown = diffs.slice(0, MAX_SHOWN).map((d) => `${d.path}: ${d.message}${Number.isNaN(d.by) ? "" : ` (off by ${d.by.toExponential(3)})`}`)
      if (diffs.length > MAX_SHOWN) shown.push(`and ${diffs.length - MAX_SHOWN} more`)
      results.push({ name: c.name, category: c.category, passed: diffs.length === 0, detail: shown.join("; ") })
    } catch (e) {
      results.push({ name: c.name, category: c.category, passed: false, detail: `threw: ${e instanceof Error ? e.message : String(e)}` })
    }
  }
  return results
}

/** `PASS name` or `FAIL name: detail`. */
export const formatResult = (r: CaseResult): string => (r.passed ? `PASS ${r.name}` : `FAIL ${r.name}: ${r.detail}`)
