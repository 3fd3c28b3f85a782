/**
 * Verifications per second of @papo/reward on the public verifier corpus
 * (test/fixtures/verifier/cases-public.json, adversarial cases left out), per mode: on the main thread
 * (the synchronous grader) and on the worker pool (all cores). One JSON line per (mode, runner):
 * `cold_*` is one pass over answers never seen before (half of the corpus, split by the corpus `group`,
 * after warming up on the other half); `warm_*` the median of `--rounds` passes over all of it (parsed
 * expressions cached, as when the G rollouts of a prompt share their gold answer).
 *
 * The Python references took, per call on this kind of machine (corpus README §8): MathRuler
 * 0.16 ms median (PAPO's compute_score), Math-Verify 1.41 ms median (gold parse + response parse + verify).
 *
 * Then the adversarial workload (the corpus's adversarial cases and generated pathological responses
 * of up to 300k characters: unclosed boxes, overlapping \( and \[ spans, "answer" anchors, …; answer
 * against a gold of the same kind of up to 20k characters too), per mode: the worst time of one
 * grading on the main thread under the default work budget (`in_thread`), and the worst time from
 * submission to answer on a pool whose workers have all started (`pool.ready()`) and run without a work
 * budget, so that only the pool's hard limit stops them (`pool`), against `--limit-ms` (default 1000)
 * and the bound limit·1.1 + 50 ms. (Waiting for a replacement worker to start is queueing, off the
 * clock; `replaced` counts the kills.)
 *
 *   npm run bench -- reward [--rounds N] [--limit-ms L]
 */
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { Grader, VerifierPool } from "@papo/reward"

interface Case {
  readonly id: string
  readonly group: string
  readonly source: string
  readonly gold: string
  readonly response: string
}

const argv = process.argv.slice(2)
const roundsArg = argv.indexOf("--rounds")
const rounds = roundsArg >= 0 ? Number(argv[roundsArg + 1]) : 5
const limitArg = argv.indexOf("--limit-ms")
const limitMs = limitArg >= 0 ? Number(argv[limitArg + 1]) : 1000
const corpus = JSON.parse(readFileSync("test/fixtures/verifier/cases-public.json", "utf8")) as { cases: Array<Case> }
// the adversarial cases measure robustness, not throughput
const cases = corpus.cases.filter((c) => c.source !== "adversarial")

/** Pathological inputs: a unit repeated to just under the response limit, and as a 20k-character gold. */
const generated = Object.entries({
  "unclosed-boxed": "\\boxed{", "paren-boxed": "\\(\\boxed{", "bracket-boxed": "\\[\\boxed{", "answer-paren": "answer \\(",
  "dollar-boxed": "$\\boxed{", "display-dollar-boxed": "$$\\boxed{", "boxed-dollar": "\\boxed{$", "answer-dollar": "answer $",
  "closed-boxes": "\\boxed{1}", "empty-boxes-close": "\\boxed{}}", "braces": "{", "fracs": "\\frac{", "sqrt": "\\sqrt{",
  "digits": "1 ", "sum": "1+", "left-paren": "\\left(", "final-answer": "final answer is "
}).flatMap(([name, unit]) => [
  { id: `generated/${name}`, gold: "1", response: unit.repeat(Math.floor(299_000 / unit.length)) },
  { id: `generated/${name}/gold`, gold: unit.repeat(Math.floor(19_000 / unit.length)), response: "<think>x</think> \\boxed{1}" }
])
const adversarial = [...corpus.cases.filter((c) => c.source === "adversarial"), ...generated]
const reference = { mathruler: 0.16, "math-verify": 1.41 }

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

// Warm the JIT on half of the cases and time the other half, so that no timed answer was seen before
// (the graders cache parsed expressions; a training run rarely repeats a response).
// Split by the corpus's `group` (a dataset row's positive and negative share a response).
const groups = [...new Set(cases.map((c) => c.group))]
const warmGroups = new Set(groups.filter((_, i) => i % 2 === 0))
const warm = cases.filter((c) => warmGroups.has(c.group))
const timed = cases.filter((c) => !warmGroups.has(c.group))

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000)

for (const mode of Grader.modes) {
  for (const c of warm) Grader.grade(c.response, c.gold, { mode })
  const perCall: Array<number> = []
  let t0 = performance.now()
  for (const c of timed) {
    const t = performance.now()
    Grader.grade(c.response, c.gold, { mode })
    perCall.push(performance.now() - t)
  }
  const cold = performance.now() - t0
  const rounds_ms: Array<number> = []
  for (let r = 0; r < rounds; r++) {
    t0 = performance.now()
    for (const c of cases) Grader.grade(c.response, c.gold, { mode })
    rounds_ms.push(performance.now() - t0)
  }
  console.log(JSON.stringify({
    bench: "reward", mode, runner: "main-thread", threads: 1,
    cold_cases: timed.length, cold_verifications_per_s: rate(timed.length, cold),
    warm_cases: cases.length, warm_verifications_per_s: rate(cases.length, median(rounds_ms)),
    median_call_ms: Number(median(perCall).toFixed(4)),
    reference_median_call_ms: reference[mode],
    speedup_vs_reference_median: Number((reference[mode] / median(perCall)).toFixed(1))
  }))
}

const threads = availableParallelism()
const pool = VerifierPool.create({ size: threads, timeoutMs: 10_000 })
try {
  for (const mode of Grader.modes) {
    await pool.gradeBatch(warm, { mode }) // workers start and JIT
    let t0 = performance.now()
    await pool.gradeBatch(timed, { mode })
    const cold = performance.now() - t0
    const rounds_ms: Array<number> = []
    for (let r = 0; r < rounds; r++) {
      t0 = performance.now()
      await pool.gradeBatch(cases, { mode })
      rounds_ms.push(performance.now() - t0)
    }
    console.log(JSON.stringify({
      bench: "reward", mode, runner: "pool", threads,
      cold_cases: timed.length, cold_verifications_per_s: rate(timed.length, cold),
      warm_cases: cases.length, warm_verifications_per_s: rate(cases.length, median(rounds_ms)),
      timed_out: pool.counters.timedOut
    }))
  }
} finally {
  await pool.close()
}

// ---------------------------------------------------------------------------------------------------
// adversarial: the worst case in-thread (work budget) and on the pool (hard limit)

const worst = (xs: Array<{ id: string; ms: number; outcome: string }>) => xs.reduce((a, b) => (b.ms > a.ms ? b : a))
const bound = limitMs * 1.1 + 50
for (const mode of Grader.modes) {
  const inThread = adversarial.map((c) => {
    const t = performance.now()
    const o = Grader.grade(c.response, c.gold, { mode })
    return { id: c.id, ms: performance.now() - t, outcome: o._tag }
  })
  const w = worst(inThread)
  console.log(JSON.stringify({
    bench: "reward-adversarial", mode, runner: "in-thread", cases: adversarial.length, work_budget_ms: Grader.defaultLimits.workMs,
    worst_ms: Number(w.ms.toFixed(1)), worst_case: w.id, worst_outcome: w.outcome,
    timed_out: inThread.filter((x) => x.outcome === "TimedOut").length, within_budget: w.ms <= Grader.defaultLimits.workMs
  }))
}
const hardPool = VerifierPool.create({ size: threads, timeoutMs: limitMs })
try {
  await hardPool.gradeBatch(cases.slice(0, 64), { mode: "math-verify" }) // workers started and warm
  for (const mode of Grader.modes) {
    const onPool: Array<{ id: string; ms: number; outcome: string }> = []
    for (const c of adversarial) {
      await hardPool.ready() // after a kill, the replacement has started: the clock measures the verification
      const t = performance.now()
      const o = await hardPool.grade(c.response, c.gold, { mode, workMs: 600_000 }) // no work budget: only the hard limit
      onPool.push({ id: c.id, ms: performance.now() - t, outcome: o._tag })
    }
    const w = worst(onPool)
    console.log(JSON.stringify({
      bench: "reward-adversarial", mode, runner: "pool", threads, cases: adversarial.length, limit_ms: limitMs, bound_ms: bound,
      worst_ms: Number(w.ms.toFixed(1)), worst_case: w.id, worst_outcome: w.outcome,
      timed_out: onPool.filter((x) => x.outcome === "TimedOut").length, replaced: hardPool.counters.replaced, within_bound: w.ms <= bound
    }))
  }
} finally {
  await hardPool.close()
}
