/**
 * The trainer's presets: partial configs over the schema defaults, one per method of the paper
 * (GRPO, DAPO, PAPO-G, PAPO-D) and per ablation. Their loss settings come from `PapoLoss.presets`
 * (the paper's Table 1 and Table 8), so a preset and the loss package cannot disagree.
 *
 * @since 0.1.0
 */
import { PapoLoss } from "@papo/loss"

/**
 * A partial config in YAML form (nested mappings, any subset of the keys).
 *
 * @category configuration
 */
export type PartialConfig = { readonly [k: string]: unknown }

/**
 * A YAML mapping (not an array, not null).
 *
 * @example
 * isMapping({ a: 1 }) // => true
 * isMapping([1]) // => false
 *
 * @category configuration
 */
export const isMapping = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

/**
 * Merges partial configs: nested mappings merge key by key, anything else in `b` replaces `a`'s value.
 *
 * @example
 * deepMerge({ trainer: { seed: 1, maxSteps: 5 } }, { trainer: { seed: 2 } }) // => { trainer: { seed: 2, maxSteps: 5 } }
 *
 * @category configuration
 */
export function deepMerge(a: PartialConfig, b: PartialConfig): PartialConfig {
  const out: Record<string, unknown> = { ...a }
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k]
    out[k] = isMapping(prev) && isMapping(v) ? deepMerge(prev, v) : v
  }
  return out
}

/**
 * Every preset name (see {@link presets}).
 *
 * @example
 * presetNames.includes("papo-g") // => true
 *
 * @category configuration
 */
export const presetNames = [
  "grpo",
  "dapo",
  "papo-g",
  "papo-d",
  "grpo-no-kl-ref",
  "papo-g-no-kl-ref",
  "papo-g-double-entropy",
  "papo-d-no-double-entropy",
  "papo-g-mask-0.4",
  "papo-g-mask-0.8",
  "papo-g-mask-1.0",
  "papo-g-gamma-0.005",
  "papo-g-gamma-0.01",
  "papo-g-gamma-0.04"
] as const

/**
 * A preset name.
 *
 * @category configuration
 */
export type PresetName = (typeof presetNames)[number]

const lossFields = (loss: PapoLoss.LossConfig): PartialConfig => ({
  algorithm: {
    useKlLoss: loss.useKlLoss,
    klPenalty: loss.klPenalty,
    klCoef: loss.klCoef,
    useKlPrcp: loss.useKlPrcp,
    klPrcpPenalty: loss.klPrcpPenalty,
    klPrcpCoef: loss.klPrcpCoef
  },
  worker: {
    actor: {
      clipRatioLow: loss.clipRatioLow,
      clipRatioHigh: loss.clipRatioHigh,
      clipRatioDual: loss.clipRatioDual,
      useAugEntropyLoss: loss.useAugEntropyLoss,
      augEntropyLossCoef: loss.augEntropyLossCoef,
      useOriEntropyLoss: loss.useOriEntropyLoss,
      oriEntropyLossCoef: loss.oriEntropyLossCoef
    }
  }
})

const dapoSampling: PartialConfig = { algorithm: { onlineFiltering: true } }
const withPapoG = (extra: PartialConfig): PartialConfig => deepMerge(lossFields(PapoLoss.presets["papo-g"]), extra)

/**
 * The presets, each a partial config over the defaults. Ablations follow the paper's: reference KL off,
 * Double Entropy on/off, mask ratio, γ.
 *
 * @example
 * presets["papo-g-mask-0.8"].algorithm // => { ...papo-g's loss fields, maskRatio: 0.8 }
 *
 * @category configuration
 */
export const presets: Readonly<Record<PresetName, PartialConfig>> = {
  grpo: lossFields(PapoLoss.presets.grpo),
  dapo: deepMerge(lossFields(PapoLoss.presets.dapo), dapoSampling),
  "papo-g": lossFields(PapoLoss.presets["papo-g"]),
  "papo-d": deepMerge(lossFields(PapoLoss.presets["papo-d"]), dapoSampling),
  "grpo-no-kl-ref": lossFields(PapoLoss.presets["grpo-no-kl-ref"]),
  "papo-g-no-kl-ref": lossFields(PapoLoss.presets["papo-g-no-kl-ref"]),
  /** The 7B recipe: γ = 0.02 regularized by Double Entropy η = 0.05. */
  "papo-g-double-entropy": lossFields(PapoLoss.presets["papo-g-7b"]),
  "papo-d-no-double-entropy": deepMerge(lossFields(PapoLoss.presets["papo-d"]), {
    ...dapoSampling,
    worker: { actor: { useAugEntropyLoss: false, useOriEntropyLoss: false } }
  }),
  "papo-g-mask-0.4": withPapoG({ algorithm: { maskRatio: 0.4 } }),
  "papo-g-mask-0.8": withPapoG({ algorithm: { maskRatio: 0.8 } }),
  "papo-g-mask-1.0": withPapoG({ algorithm: { maskRatio: 1.0 } }),
  "papo-g-gamma-0.005": withPapoG({ algorithm: { klPrcpCoef: 0.005 } }),
  "papo-g-gamma-0.01": withPapoG({ algorithm: { klPrcpCoef: 0.01 } }),
  "papo-g-gamma-0.04": withPapoG({ algorithm: { klPrcpCoef: 0.04 } })
}
