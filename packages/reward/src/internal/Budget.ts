/**
 * A cooperative work budget for grading on the calling thread: `withBudget(ms, f)` runs `f` with a
 * deadline, and the graders call `checkBudget()` at every step whose count grows with the input (each
 * extraction match, each parsed node, each numeric evaluation), which throws `BudgetExceeded` once the
 * deadline has passed. Grading is synchronous and single-threaded, so one module-level deadline suffices;
 * nested budgets keep the earlier deadline.
 *
 * @internal
 */

/** Thrown by `checkBudget` after the deadline. */
export class BudgetExceeded extends Error {
  constructor(readonly limitMs: number) {
    super(`grading exceeded its work budget of ${limitMs} ms`)
  }
}

let deadline = Infinity
let limit = 0

/** Runs `f` with a deadline `ms` from now (or the enclosing one, if earlier). */
export const withBudget = <A>(ms: number, f: () => A): A => {
  const saved = [deadline, limit] as const
  const mine = performance.now() + ms
  if (mine < deadline) {
    deadline = mine
    limit = ms
  }
  try {
    return f()
  } finally {
    ;[deadline, limit] = saved
  }
}

/** Throws `BudgetExceeded` when the current deadline has passed. */
export const checkBudget = (): void => {
  if (deadline !== Infinity && performance.now() > deadline) throw new BudgetExceeded(limit)
}

/**
 * Refuses, when a budget is active, work predicted to take longer than the budget: `steps` is the
 * prediction, `stepsPerMs` a conservative rate. A single regular-expression scan cannot be interrupted,
 * so its cost is bounded before it starts. Outside a budget (a direct library call) it never throws.
 */
export const checkPredictedWork = (steps: number, stepsPerMs: number): void => {
  if (deadline !== Infinity && steps > limit * stepsPerMs) throw new BudgetExceeded(limit)
}
