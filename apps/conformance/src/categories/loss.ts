/**
 * Conformance runners for the @papo/loss categories of `papo-golden.json`: advantage, aggregation,
 * policy_loss, kl, perception_kl, entropy, double_entropy, total_loss, schedule, dynamic_sampling.
 * Inputs come from the case alone; outputs are shaped as the golden file's `outputs`.
 */
import * as tf from "@tensorflow/tfjs"
import {
  Advantage,
  Aggregation,
  DynamicSampling,
  Entropy,
  Kl,
  PapoLoss,
  PerceptionKl,
  PolicyLoss,
  Schedule
} from "@papo/loss"
import { type CategoryRunner, field } from "./Category.js"

type Obj = Readonly<Record<string, unknown>>
const t = (o: Obj, key: string, dtype: "float32" | "int32" = "float32"): tf.Tensor =>
  tf.tensor(field<Array<unknown>>(o, key) as Array<number>, undefined, dtype)
const value = (x: tf.Tensor): unknown => x.arraySync()
const num = (x: tf.Tensor): number => x.dataSync()[0]!
const bools = (x: tf.Tensor): unknown => (x.arraySync() as Array<Array<number>>).map((r) => r.map((v) => v !== 0))
const nums = (m: Readonly<Record<string, tf.Tensor>>): Record<string, number> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, num(v)]))

/**
 * d f / d x, or zeros when f does not depend on x at all (tfjs throws there; PyTorch gives zeros, as the
 * golden file records for a loss term that is constant in x).
 */
const gradOrZeros = (f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor => {
  try {
    return tf.grad(f)(x)
  } catch (e) {
    if (e instanceof Error && e.message.startsWith("Cannot compute gradient of y=f(x)")) return tf.zerosLike(x)
    throw e
  }
}

/** Runs f inside a tidy scope so a case leaves no tensor behind. */
const scoped = <A>(f: () => A): A => {
  tf.engine().startScope()
  try {
    return f()
  } finally {
    tf.engine().endScope()
  }
}

const advantage: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const { advantages, scores } = Advantage.tokenAdvantages(
      t(inp, "token_level_rewards") as tf.Tensor2D,
      t(inp, "response_mask") as tf.Tensor2D,
      field<Array<string>>(inp, "index"),
      { eps: field<number>(hp, "eps") }
    )
    return { advantages: value(advantages), returns: value(advantages), normalized_scores: Array.from(scores) }
  })

const aggregation: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const mode = field<Aggregation.LossAggMode>(hp, "loss_avg_mode")
    const mask = t(inp, "mask")
    const f = (v: tf.Tensor) => Aggregation.averageLoss(v, mask, mode, { eps: field<number>(hp, "eps") })
    const values = t(inp, "values")
    return { loss: num(f(values)), grad_wrt_values: value(tf.grad(f)(values)) }
  })

const policyConfig = (hp: Obj): PolicyLoss.PolicyLossConfig => ({
  clipRatioLow: field(hp, "clip_ratio_low"),
  clipRatioHigh: field(hp, "clip_ratio_high"),
  clipRatioDual: field(hp, "clip_ratio_dual"),
  lossAggMode: field(hp, "loss_avg_mode")
})

const policyLoss: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const config = policyConfig(hp)
    const rest = { oldLogProbs: t(inp, "old_log_probs"), advantages: t(inp, "advantages"), responseMask: t(inp, "response_mask") }
    const logProbs = t(inp, "log_probs")
    const out = PolicyLoss.policyLoss({ logProbs, ...rest }, config)
    const grad = tf.grad((lp: tf.Tensor) => PolicyLoss.policyLoss({ logProbs: lp, ...rest }, config).pgLoss)(logProbs)
    return {
      pg_loss: num(out.pgLoss),
      metrics: nums(out.metrics),
      ratio: value(out.ratio),
      per_token_loss: value(out.perTokenLoss),
      grad_wrt_log_probs: value(grad)
    }
  })

const kl: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const penalty = field<Kl.KlPenalty>(hp, "kl_penalty")
    const lp = t(inp, "log_probs")
    const ref = t(inp, "ref_log_probs")
    const [gLp, gRef] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(Kl.klPenalty(a, b, penalty)))([lp, ref])
    return {
      kld: value(Kl.klPenalty(lp, ref, penalty)),
      grad_of_sum_wrt_log_probs: value(gLp!),
      grad_of_sum_wrt_ref_log_probs: value(gRef!)
    }
  })

const perceptionConfig = (hp: Obj): PerceptionKl.PerceptionKlConfig => ({
  klPrcpPenalty: field(hp, "kl_prcp_penalty"),
  lossAggMode: field(hp, "loss_avg_mode"),
  useKlPrcpClipping: field(hp, "use_kl_prcp_clipping"),
  klPrcpClipping: field(hp, "kl_prcp_clipping"),
  useKlPrcpTokenLevelMask: field(hp, "use_kl_prcp_token_level_mask"),
  klPrcpTokenLevelMaskTopP: field(hp, "kl_prcp_token_level_mask_top_p")
})

const perceptionKl: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const config = perceptionConfig(hp)
    const rest = {
      maskedLogProbs: t(inp, "aug_log_probs"),
      responseMask: t(inp, "response_mask"),
      weighting: t(inp, "kl_prcp_weighting"),
      coef: field<number>(hp, "kl_prcp_coef")
    }
    const logProbs = t(inp, "log_probs")
    const out = PerceptionKl.perceptionKl({ logProbs, ...rest }, config)
    const grad = tf.grad((lp: tf.Tensor) => PerceptionKl.perceptionKl({ logProbs: lp, ...rest }, config).loss)(logProbs)
    return {
      per_token_kl: value(out.perTokenKl),
      token_mask: out.tokenMask === null ? null : bools(out.tokenMask),
      per_token_kl_final: value(out.perTokenKlFinal),
      kl_prcp_loss: num(out.klPrcpLoss),
      loss_term: num(out.loss),
      metrics: nums(out.metrics),
      grad_wrt_log_probs: value(grad)
    }
  })

const entropy: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const temperature = field<number>(hp, "temperature")
    const logits = t(inp, "logits")
    const ids = t(inp, "token_ids", "int32")
    const mask = t(inp, "response_mask")
    const entropyLoss = (l: tf.Tensor) => tf.neg(Aggregation.maskedMean(Entropy.logProbsFromLogits(l, ids, temperature), mask))
    const trueEntropy = Entropy.trueEntropy(logits, temperature)
    return {
      log_probs: value(Entropy.logProbsFromLogits(logits, ids, temperature)),
      entropy_loss: num(entropyLoss(logits)),
      grad_of_entropy_loss_wrt_logits: value(tf.grad(entropyLoss)(logits)),
      true_entropy: value(trueEntropy),
      masked_mean_true_entropy: num(Aggregation.maskedMean(trueEntropy, mask))
    }
  })

const entropyConfig = (hp: Obj) => ({
  useAugEntropyLoss: field<boolean>(hp, "use_aug_entropy_loss"),
  augEntropyLossCoef: field<number>(hp, "aug_entropy_loss_coef"),
  useOriEntropyLoss: field<boolean>(hp, "use_ori_entropy_loss"),
  oriEntropyLossCoef: field<number>(hp, "ori_entropy_loss_coef")
})

const batchCoef = (inp: Obj): number => field<Array<number>>(inp, "kl_prcp_coef_batch")[0]!

const doubleEntropy: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const config = entropyConfig(hp)
    const disc = Schedule.discountRatio(batchCoef(inp), field(hp, "kl_prcp_coef"))
    const rest = { maskedLogProbs: t(inp, "aug_log_probs"), responseMask: t(inp, "response_mask"), discountRatio: disc }
    const logProbs = t(inp, "log_probs")
    const out = Entropy.doubleEntropy({ logProbs, ...rest }, config)
    const grad = gradOrZeros((lp) => Entropy.doubleEntropy({ logProbs: lp, ...rest }, config).loss, logProbs)
    return {
      entropy_loss: num(out.entropyLoss),
      aug_entropy_loss: num(out.augEntropyLoss!),
      discount_ratio: disc,
      loss_term: num(out.loss),
      metrics: nums(out.metrics),
      grad_wrt_log_probs: value(grad)
    }
  })

const optional = (o: Obj, key: string): tf.Tensor | null => (field(o, key) === null ? null : t(o, key))

const totalLoss: CategoryRunner = (hp, inp) =>
  scoped(() => {
    const config: PapoLoss.LossConfig = {
      ...policyConfig(hp),
      ...perceptionConfig(hp),
      ...entropyConfig(hp),
      useKlLoss: field(hp, "use_kl_loss"),
      klPenalty: field(hp, "kl_penalty"),
      klCoef: field(hp, "kl_coef"),
      useKlPrcp: field(hp, "use_kl_prcp"),
      klPrcpCoef: field(hp, "kl_prcp_coef"),
      recomputeMaskedLogProbs: field(hp, "RECOMPUTE_AUG_LOG_PROBS"),
      gradientAccumulation: field(hp, "gradient_accumulation")
    }
    const coefBatch = field<Array<number> | null>(inp, "kl_prcp_coef_batch")
    const fixed = {
      oldLogProbs: t(inp, "old_log_probs"),
      advantages: t(inp, "advantages"),
      responseMask: t(inp, "response_mask"),
      refLogProbs: optional(inp, "ref_log_probs"),
      klPrcpWeighting: optional(inp, "kl_prcp_weighting"),
      ...(coefBatch === null ? {} : { klPrcpCoef: coefBatch[0]! })
    }
    const logProbs = t(inp, "log_probs")
    const masked = optional(inp, "aug_log_probs")
    const out = PapoLoss.papoLoss({ logProbs, maskedLogProbs: masked, ...fixed }, config)
    const f = (lp: tf.Tensor, m: tf.Tensor | null) => PapoLoss.papoLoss({ logProbs: lp, maskedLogProbs: m, ...fixed }, config).loss
    let gradLp: tf.Tensor
    let gradMasked: tf.Tensor | null = null
    gradLp = gradOrZeros((lp) => f(lp, masked), logProbs)
    if (config.recomputeMaskedLogProbs && masked !== null) gradMasked = gradOrZeros((m) => f(logProbs, m), masked)
    const c = out.components
    const maybe = (x: tf.Scalar | null) => (x === null ? null : num(x))
    return {
      pg_loss: num(out.pgLoss),
      loss: num(out.loss),
      metrics: nums(out.metrics),
      components: {
        pg_surrogate_loss: num(c.pgSurrogateLoss),
        kl_loss: maybe(c.klLoss),
        kl_prcp_loss: maybe(c.klPrcpLoss),
        entropy_loss: num(c.entropyLoss),
        aug_entropy_loss: maybe(c.augEntropyLoss),
        discount_ratio: c.discountRatio
      },
      grad_wrt_log_probs: value(gradLp),
      grad_wrt_aug_log_probs: gradMasked === null ? null : value(gradMasked)
    }
  })

const schedule: CategoryRunner = (hp, inp) => {
  const kind = field<"fixed" | "annealing">(hp, "kl_prcp_schedule")
  const klPrcpCoef = field<number>(hp, "kl_prcp_coef")
  const s: Schedule.KlPrcpSchedule = kind === "fixed"
    ? { kind, klPrcpCoef }
    : {
      kind,
      klPrcpCoef,
      startValue: field(hp, "start_value"),
      endValue: field(hp, "end_value"),
      annealingRatio: field(hp, "annealing_ratio"),
      trainingSteps: field(hp, "training_steps")
    }
  const steps = Array.from({ length: field<number>(inp, "num_steps") }, (_, k) => Schedule.klPrcpCoefAt(s, k + 1))
  return {
    kl_prcp_coef_per_step: steps.map((x) => x.coef),
    discount_ratio_per_step: steps.map((x) => x.discountRatio),
    annealing_total_steps: Schedule.annealingTotalSteps(s)
  }
}

const dynamicSampling: CategoryRunner = (hp, inp) => {
  const chunks = field<Array<{ uids: Array<string>; filter_scores: Array<number> }>>(inp, "chunks")
  const result = DynamicSampling.makeBatch(
    chunks.map((c) => ({ uids: c.uids, filterScores: c.filter_scores })),
    {
      filterLow: field(hp, "filter_low"),
      filterHigh: field(hp, "filter_high"),
      n: field(hp, "n"),
      rolloutBatchSize: field(hp, "rollout_batch_size"),
      maxTryMakeBatch: field(hp, "max_try_make_batch")
    }
  )
  if (result._tag === "Exhausted") throw new Error(`the case's ${chunks.length} chunks ran out before the batch was full`)
  return {
    kept_indices_per_chunk: result.keptIndicesPerChunk,
    final_batch: result._tag === "Full" ? result.finalBatch : null,
    num_tries: result.numTries,
    error: result._tag === "OutOfTries" ? "ValueError" : null
  }
}

/** The runners of every category that @papo/loss implements, by category name. */
export const lossRunners: Readonly<Record<string, CategoryRunner>> = {
  advantage,
  aggregation,
  policy_loss: policyLoss,
  kl,
  perception_kl: perceptionKl,
  entropy,
  double_entropy: doubleEntropy,
  total_loss: totalLoss,
  schedule,
  dynamic_sampling: dynamicSampling
}
