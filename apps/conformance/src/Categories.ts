/**
 * Which package answers which category of the golden file. A category missing here fails every one of
 * its cases with "not implemented".
 */
import type { CategoryRunner } from "./categories/Category.js"
import { lossRunners } from "./categories/loss.js"
import { maskingRunners } from "./categories/masking.js"
import { rewardRunners } from "./categories/reward.js"

export const runners: Readonly<Record<string, CategoryRunner>> = {
  ...lossRunners,
  ...maskingRunners,
  ...rewardRunners
}
