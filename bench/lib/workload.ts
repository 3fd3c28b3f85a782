/**
 * The papo-step workload's sizes and models (the spec is in bench/papo-step.ts's header), shared by
 * bench/papo-step.ts and bench/profile.ts.
 */
import { Config, Optimizer, Policy } from "@papo/model"

/** 16 prompts × 5 rollouts = 80 sequences of [32 image][8 prompt][16 response] tokens. */
export const B = 16, G = 5, N = B * G, TP = 8, TR = 16

/** The policy of a config (seed 0), its frozen reference copy, and AdamW as the spec fixes it (lr 1e-6, wd 0.01, clip 1). */
export const models = (name: "small" | "medium") => {
  const config = Config.configs[name]
  const policy = Policy.create(config, 0)
  const ref = Policy.reference(policy)
  const opt = Optimizer.adamW(policy, { lr: 1e-6, weightDecay: 0.01, maxGradNorm: 1 })
  return { config, policy, ref, opt }
}

/** Frees what {@link models} made. */
export const dispose = ({ policy, ref, opt }: ReturnType<typeof models>): void => {
  Optimizer.dispose(opt)
  Policy.dispose(policy)
  Policy.dispose(ref)
}
