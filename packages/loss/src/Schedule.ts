/**
 * The perception-loss coefficient γ over training (`core_algos.py::FixedKLController` /
 * `AnnealingKLController`, read by `ray_trainer.py::_get_kl_prcp_coef`).
 *
 * - `fixed` (every released config): γ_k = klPrcpCoef.
 * - `annealing`: linear from `startValue` to `endValue` over `max(1, ⌊trainingSteps·annealingRatio⌋)` steps,
 *   γ_k = start + (end − start)·min((k − 1)/total, 1) for the 1-based step k (the controller updates after
 *   the value is stored, hence k − 1).
 *
 * When γ_k differs from the config's `klPrcpCoef`, the discount γ_k / klPrcpCoef also scales both entropy
 * terms. Note the reference's YAML sets `startValue` 0.01 even where the scripts set γ = 0.02, so the
 * annealed run starts at a discount of 0.5.
 *
 * @since 0.1.0
 */

/**
 * A schedule of γ.
 *
 * @category configuration
 */
export type KlPrcpSchedule =
  | { readonly kind: "fixed"; readonly klPrcpCoef: number }
  | {
    readonly kind: "annealing"
    readonly klPrcpCoef: number
    readonly startValue: number
    readonly endValue: number
    readonly annealingRatio: number
    readonly trainingSteps: number
  }

/**
 * The number of steps the annealing runs for, or null for a fixed schedule.
 *
 * @category math
 */
export const annealingTotalSteps = (schedule: KlPrcpSchedule): number | null =>
  schedule.kind === "fixed" ? null : Math.max(1, Math.floor(schedule.trainingSteps * schedule.annealingRatio))

/**
 * γ at the 1-based training step `step`, and the discount applied to the entropy terms.
 *
 * @example
 * klPrcpCoefAt({ kind: "annealing", klPrcpCoef: 0.02, startValue: 0.01, endValue: 0, annealingRatio: 0.5, trainingSteps: 10 }, 1)
 * // => { coef: 0.01, discountRatio: 0.5 }
 *
 * @category math
 */
export const klPrcpCoefAt = (schedule: KlPrcpSchedule, step: number): { readonly coef: number; readonly discountRatio: number } => {
  if (!Number.isInteger(step) || step < 1) throw new Error(`Error in klPrcpCoefAt: step must be an integer ≥ 1, got ${step}`)
  const coef = schedule.kind === "fixed"
    ? schedule.klPrcpCoef
    : schedule.startValue +
      (schedule.endValue - schedule.startValue) * Math.min((step - 1) / annealingTotalSteps(schedule)!, 1)
  return { coef, discountRatio: discountRatio(coef, schedule.klPrcpCoef) }
}

/**
 * 1 when the batch's γ equals the config's, else their ratio (the reference's `discount_ratio`).
 *
 * @category math
 */
export const discountRatio = (batchCoef: number, configCoef: number): number =>
  batchCoef === configCoef ? 1 : batchCoef / configCoef
