/**
 * Conformance runner for the `reward` category of `papo-golden.json`: PAPO's `compute_score`
 * (`examples/reward_function/math.py` with MathRuler's grader), one score per (response, ground truth).
 */
import { MathRuler } from "@papo/reward"
import { type CategoryRunner, field } from "./Category.js"

const reward: CategoryRunner = (hp, inp) => {
  const w = field<number>(hp, "format_weight")
  const responses = field<Array<string>>(inp, "responses")
  const truths = field<Array<string>>(inp, "ground_truths")
  if (responses.length !== truths.length) throw new Error(`${responses.length} responses but ${truths.length} ground truths`)
  return { scores: responses.map((r, i) => MathRuler.computeScore(r, truths[i]!, w)) }
}

/** The runners this file provides, by category name. */
export const rewardRunners: Readonly<Record<string, CategoryRunner>> = { reward }
