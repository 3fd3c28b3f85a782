/**
 * The trainer's configuration: one Effect Schema, laid out like EasyR1's `config.yaml`
 * (`data` / `algorithm` / `worker.actor` / `worker.rollout` / `trainer`, plus `sft`), camelCase keys.
 * Every default sits beside its field, with the reason where it is not obvious; "scaled" marks a value
 * changed from the paper's Table 1 / EasyR1 because the policy here is a small model on 28-px images.
 *
 * A config is resolved as: schema defaults < `preset` (Presets.ts) < YAML file < dotted command-line
 * overrides (`algorithm.klPrcpCoef=0.02`); ConfigLoad.ts does that and words the errors. The lists of
 * allowed values come from the packages that implement them (KL estimators and loss aggregation from
 * `@papo/loss`, reward modes from `@papo/reward`, backends from `@papo/backend`).
 *
 * @since 0.1.0
 */
import { availableParallelism } from "node:os"
import { backendNames } from "@papo/backend"
import { Aggregation, Kl, PapoLoss } from "@papo/loss"
import { Grader } from "@papo/reward"
import { Effect, Schema } from "effect"
import * as YAML from "yaml"
import * as CollapseGuard from "./CollapseGuard.js"
import { presetNames } from "./Presets.js"

const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))
const section = <S extends Schema.Top>(schema: S) => withDefault(schema, {} as S["Encoded"])

const Probability = Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const NonNegative = Schema.Number.check(Schema.isGreaterThanOrEqualTo(0))
const Positive = Schema.Number.check(Schema.isGreaterThan(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

/**
 * The built-in tasks a split can name instead of a `.jsonl` file.
 *
 * @category configuration
 */
export const builtinTasks = ["cued", "digits", "shapes"] as const

/**
 * The file kinds a split can name: EasyR1 JSONL (image paths) or Parquet as Hugging Face `datasets`
 * writes it (images embedded as bytes, or paths).
 *
 * @example
 * dataFileExtensions.some((x) => "virl/train.parquet".endsWith(x)) // => true
 *
 * @category configuration
 */
export const dataFileExtensions = [".jsonl", ".parquet"] as const

/**
 * A split: a built-in task, a JSONL file or a Parquet file (EasyR1 fields `images`, `problem`, `answer`).
 *
 * @category configuration
 */
export const DataSource = Schema.String.check(
  Schema.makeFilter(
    (s) => (builtinTasks as ReadonlyArray<string>).includes(s) || dataFileExtensions.some((x) => s.endsWith(x)),
    { expected: `one of ${builtinTasks.map((t) => `"${t}"`).join(", ")} or a path ending in .jsonl or .parquet` }
  )
)

/**
 * The question kinds of the digit task.
 *
 * @category configuration
 */
export const questionTypes = ["sum", "difference", "larger", "product", "count"] as const

const base = PapoLoss.presets.grpo
/** The per-token KL estimators (`full` is left out: with per-token inputs it is not a KL). */
const KlEstimator = Schema.Literals(Kl.perTokenKlPenalties)

/** A `[lo, hi]` range of per-item values. */
const Range = Schema.Tuple([NonNegative, NonNegative]).check(
  Schema.makeFilter(([lo, hi]) => lo <= hi, { expected: "a range [lo, hi] with lo ≤ hi" })
)

/**
 * The cued-digit task (`cued`, see Cued.ts): one bitmap digit, a question adding to it, and on some
 * questions a cue word tied to a digit (the language prior). Defaults from the warm-start pilots in
 * apps/experiments/README.md: at these values the warm start can see and still follows the cue.
 */
const CuedConfig = Schema.Struct({
  /** Share of training questions with a cue word (the test split has equal conflict / agree / uncued thirds). */
  cueRate: withDefault(Probability, 0.7),
  /**
   * Probability that a training cue names the digit drawn. 1 (the warm start's): the cue is a perfect
   * shortcut, learned beside reading (at 0.95 the warm start looked instead: 6.5% of conflict answers
   * followed the cue). RL data uses 0.5: half the cues conflict with the image.
   */
  agree: withDefault(Probability, 1),
  /**
   * Probability that the gold trace of a conflicting training question states the cue's digit (a teacher
   * that leans on the prior; the answer stays the image's, so it only matters for SFT). With agree < 1 it
   * sets how often the warm start follows the cue on a conflict, hence whether RL gets any signal there.
   */
  followRate: withDefault(Probability, 0),
  /** Per-item pixel-noise σ, uniform in [lo, hi] (a spread, [0.25, 0.4], kept the warm start from learning to read in 600 steps). */
  noise: withDefault(Range, [0.35, 0.35]),
  /** Per-item stroke intensity, uniform in [lo, hi]. */
  intensity: withDefault(Range, [1, 1]),
  /** Glyph offset in pixels, uniform in ±jitter (the patch embedding has no translation invariance: keep it small). */
  jitter: withDefault(NonNegativeInt, 0),
  /** Font pixels become scale × scale blocks (5×7 font × 3 = 15×21 on the 28×56 canvas). */
  scale: withDefault(PositiveInt, 3)
})

const DataConfig = Schema.Struct({
  /** Training split: "cued", "digits", "shapes", or a .jsonl or .parquet file. */
  train: withDefault(DataSource, "digits"),
  /** Held-out split; a built-in task draws it from digit images disjoint from training. */
  test: withDefault(DataSource, "digits"),
  /** Examples generated for a built-in training split (scaled: ViRL39K has 38.8K). */
  trainSize: withDefault(PositiveInt, 4000),
  /** Examples generated for a built-in test split. */
  testSize: withDefault(PositiveInt, 200),
  /** Digits side by side per image: 2 gives 28×56, the `small` model's input. */
  numDigits: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 2, maximum: 4 })), 2),
  questionTypes: withDefault(Schema.Array(Schema.Literals(questionTypes)).check(Schema.isMinLength(1)), [...questionTypes]),
  /**
   * Share of questions that state one of the digits in the text, so the image is only half needed:
   * they form the low-vision-dependency subset, the rest the high one (the paper's split of benchmarks).
   */
  hintRate: withDefault(Probability, 0.3),
  /** Share of each digit class's MNIST images held out for the test split (disjoint images). */
  testImageShare: withDefault(Schema.Number.check(Schema.isBetween({ minimum: 0.05, maximum: 0.95 })), 0.2),
  /**
   * Appended to every question. The paper's 170-character instruction would triple a character-level
   * prompt (scaled); the SFT warm start teaches the `<think>…</think>\boxed{…}` format instead.
   */
  promptSuffix: withDefault(Schema.String, ""),
  /**
   * Prompt tokens; a longer prompt is an error that counts them (scaled from 4096). null follows the data:
   * the longest prompt of both splits rounded up to a multiple of 8 (48 for the built-in tasks).
   */
  maxPromptLength: withDefault(Schema.NullOr(PositiveInt), null),
  /**
   * Response tokens generated at most (scaled from 2048). null follows the data: 1.5 × the longest SFT
   * target (gold response, or the answer in the reward's format) with EOS, rounded up to a multiple of 8,
   * at least 16 — room for RL to write more than the target (24 for the built-in tasks).
   */
  maxResponseLength: withDefault(Schema.NullOr(PositiveInt), null),
  /** Record fields of a JSONL or Parquet split (EasyR1's `prompt_key`, `answer_key`, `image_key`). */
  promptKey: withDefault(Schema.String, "problem"),
  answerKey: withDefault(Schema.String, "answer"),
  imageKey: withDefault(Schema.String, "images"),
  /** The gold reasoning trace's field (optional in a record), for `papo sft`. */
  responseKey: withDefault(Schema.String, "response"),
  /**
   * The policy's input size in pixels; every image is resized to it (bilinear). null chooses it: the
   * named model's (28 × 56) for the built-in tasks; for files, the largest image among the first 256
   * training records, scaled with its aspect into [minPixels, maxPixels] and rounded to multiples of the
   * patch size (as Qwen2-VL's smart_resize does per image; here once per dataset, the input is fixed).
   * A checkpoint in `worker.actor.init` fixes all three.
   */
  imageHeight: withDefault(Schema.NullOr(PositiveInt), null),
  imageWidth: withDefault(Schema.NullOr(PositiveInt), null),
  /** 1 (luminance) or 3 (RGB). null: 3 when any of those sampled images has colour, else 1 (built-ins: 1). */
  imageChannels: withDefault(Schema.NullOr(Schema.Literals([1, 3])), null),
  /**
   * EasyR1's max_pixels / min_pixels, for the chosen size (scaled from PAPO's 1003520 / 200704, i.e. 1280 / 256
   * patches of 28²: here 56² and 28², 64 / 16 patches of 7²).
   */
  maxPixels: withDefault(PositiveInt, 3136),
  minPixels: withDefault(PositiveInt, 784),
  /** Prompts per training step (scaled from 384). */
  rolloutBatchSize: withDefault(PositiveInt, 16),
  /** Prompts per generation round of DAPO's dynamic sampling (the reference: 128 of 384); null: rolloutBatchSize. */
  miniRolloutBatchSize: withDefault(Schema.NullOr(PositiveInt), null),
  /** A malformed record in a JSONL split: stop the run, or skip it (counted and reported). */
  onBadRecord: withDefault(Schema.Literals(["stop", "skip"]), "stop"),
  /** Seed of task generation and data order. */
  seed: withDefault(Schema.Int, 1),
  cued: section(CuedConfig)
})

const AlgorithmConfig = Schema.Struct({
  /** How advantages are scaled after the group mean (group-std = GRPO/DAPO in the reference). */
  advScaling: withDefault(Schema.Literals(["group-std", "none", "batch-std"]), "group-std"),
  /** β·KL(π_θ‖π_ref) as a loss term; false = EasyR1's `disable_kl` (no reference model is kept). */
  useKlLoss: withDefault(Schema.Boolean, base.useKlLoss),
  klPenalty: withDefault(KlEstimator, "low_var_kl"),
  /** β. */
  klCoef: withDefault(NonNegative, base.klCoef),
  /** PAPO's implicit perception loss on. */
  useKlPrcp: withDefault(Schema.Boolean, base.useKlPrcp),
  klPrcpPenalty: withDefault(KlEstimator, "low_var_kl"),
  /** γ (PAPO-G 0.02, PAPO-D 0.01; 0.04 collapses in the paper). */
  klPrcpCoef: withDefault(NonNegative, base.klPrcpCoef),
  klPrcpSchedule: withDefault(Schema.Literals(["fixed", "annealing"]), "fixed"),
  klPrcpStartValue: withDefault(NonNegative, 0.01),
  klPrcpEndValue: withDefault(NonNegative, 0),
  klPrcpAnnealingRatio: withDefault(Probability, 0.5),
  /** Patch-masking probability p of each patch (black_prob). */
  maskRatio: withDefault(Probability, 0.6),
  /** Patch side in pixels (scaled from 14: the images are 28 px tall instead of ≥448). */
  maskPatchSize: withDefault(PositiveInt, 7),
  /** DAPO's dynamic sampling. */
  onlineFiltering: withDefault(Schema.Boolean, false),
  /** Filter on accuracy, as the reference does (not overall). */
  filterKey: withDefault(Schema.Literals(["accuracy", "overall"]), "accuracy"),
  filterLow: withDefault(Probability, 0.01),
  filterHigh: withDefault(Probability, 0.99),
  maxTryMakeBatch: withDefault(Schema.Int, 20)
})

const OptimConfig = Schema.Struct({
  /** Scaled from 1e-6: a small model warm-started by SFT moves at 1e-6 far too slowly to see in 100 steps. */
  lr: withDefault(Positive, 5e-5),
  weightDecay: withDefault(NonNegative, 0.01),
  betas: withDefault(Schema.Tuple([Probability, Probability]), [0.9, 0.999]),
  maxGradNorm: withDefault(Positive, 1.0)
})

const ActorConfig = Schema.Struct({
  /** The `@papo/model` config name. */
  model: withDefault(Schema.Literals(["tiny", "small", "medium"]), "small"),
  /** Architecture overrides of the named config; null keeps its value. */
  dModel: withDefault(Schema.NullOr(PositiveInt), null),
  nLayers: withDefault(Schema.NullOr(PositiveInt), null),
  nHeads: withDefault(Schema.NullOr(PositiveInt), null),
  dMlp: withDefault(Schema.NullOr(PositiveInt), null),
  /** Side of the image patches (one token each); null keeps the named config's (7: a 56 × 56 image is 64 tokens). */
  patchSize: withDefault(Schema.NullOr(PositiveInt), null),
  /** Initial weights: a checkpoint folder (e.g. an SFT run's), or "" for a fresh model. */
  init: withDefault(Schema.String, ""),
  /** Prompts per optimizer step (scaled from 128 of 384: 2 updates per step instead of 3). */
  globalBatchSize: withDefault(PositiveInt, 8),
  /** Sequences per micro-batch (scaled from 4: one wide matmul is faster on wasm than many narrow). */
  microBatchSizePerDeviceForUpdate: withDefault(PositiveInt, 40),
  /** Sequences per no-grad log-prob pass. */
  microBatchSizePerDeviceForExperience: withDefault(PositiveInt, 80),
  ppoEpochs: withDefault(PositiveInt, 1),
  /** ε_low. */
  clipRatioLow: withDefault(Probability, base.clipRatioLow),
  /** ε_high: 0.3 for GRPO/PAPO-G (the reference default), 0.28 for DAPO/PAPO-D. */
  clipRatioHigh: withDefault(NonNegative, base.clipRatioHigh),
  /** Dual-clip C, always on in the reference. */
  clipRatioDual: withDefault(Schema.Number.check(Schema.isGreaterThan(1)), base.clipRatioDual),
  /**
   * EasyR1's `loss_avg_mode` (`@papo/loss` calls it `lossAggMode`, verl's name): `token` or `seq`. Every
   * released config uses token-mean, GRPO included.
   */
  lossAvgMode: withDefault(Schema.Literals(Aggregation.referenceLossAggModes), "token"),
  useAugEntropyLoss: withDefault(Schema.Boolean, base.useAugEntropyLoss),
  /** η2. */
  augEntropyLossCoef: withDefault(NonNegative, base.augEntropyLossCoef),
  useOriEntropyLoss: withDefault(Schema.Boolean, base.useOriEntropyLoss),
  /** η1. */
  oriEntropyLossCoef: withDefault(NonNegative, base.oriEntropyLossCoef),
  /** The reference's RECOMPUTE_AUG_LOG_PROBS: masked branch with grad (off in the paper). */
  recomputeMaskedLogProbs: withDefault(Schema.Boolean, base.recomputeMaskedLogProbs),
  optim: section(OptimConfig)
})

const RolloutConfig = Schema.Struct({
  /** G responses per prompt. */
  n: withDefault(Schema.Int.check(Schema.isGreaterThanOrEqualTo(2)), 5),
  temperature: withDefault(Positive, 1.0),
  topP: withDefault(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMinimum: true })), 0.99)
})

const RewardConfig = Schema.Struct({
  /** `mathruler`: PAPO/EasyR1's grader; `math-verify`: TRL's. */
  mode: withDefault(Schema.Literals(Grader.modes), "mathruler"),
  /** w in overall = (1 − w)·accuracy + w·format (PAPO: 0.1). */
  formatWeight: withDefault(Probability, 0.1),
  /** 0 grades in the training thread (the responses here are short); n > 0 uses a pool of n worker threads. */
  workers: withDefault(NonNegativeInt, 0),
  /** Hard wall-clock limit per verification in the pool (it answers TimedOut). */
  timeoutMs: withDefault(PositiveInt, 5000)
})

const WorkerConfig = Schema.Struct({
  actor: section(ActorConfig),
  rollout: section(RolloutConfig),
  reward: section(RewardConfig)
})

const guardDefaults = CollapseGuard.defaultCollapseGuardConfig

/** The watch for KL_prcp hacking (see CollapseGuard.ts for what each threshold means). */
const CollapseGuardSettings = Schema.Struct({
  /**
   * `warn` logs the warning and the collapse; `rollback` also goes back to the newest checkpoint from
   * before the alarm and continues with γ × gammaFactor; `off` does not watch.
   */
  action: withDefault(Schema.Literals(["off", "warn", "rollback"]), "warn"),
  gammaFactor: withDefault(Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1, exclusiveMaximum: true })), 0.5),
  /** Rollbacks at most; then the guard only warns. */
  maxRollbacks: withDefault(NonNegativeInt, 2),
  recent: withDefault(PositiveInt, guardDefaults.recent),
  warmup: withDefault(NonNegativeInt, guardDefaults.warmup),
  klRatio: withDefault(Schema.Number.check(Schema.isGreaterThan(1)), guardDefaults.klRatio),
  klFloor: withDefault(NonNegative, guardDefaults.klFloor),
  rewardDrop: withDefault(Probability, guardDefaults.rewardDrop),
  clipfracRise: withDefault(NonNegative, guardDefaults.clipfracRise),
  entropyRatio: withDefault(Schema.Number.check(Schema.isGreaterThan(1)), guardDefaults.entropyRatio),
  minSignals: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 4 })), guardDefaults.minSignals),
  patience: withDefault(PositiveInt, guardDefaults.patience)
})

/**
 * `trainer.threads` when unset: 2 (the most the trainer uses) on a machine with two or more cores, else 1.
 *
 * @example
 * defaultThreads // => 2 (on a 2-core machine)
 *
 * @category configuration
 */
export const defaultThreads = Math.min(2, availableParallelism())

const TrainerConfig = Schema.Struct({
  /** The run folder is `<outputDir>/<experimentName>/`. */
  experimentName: withDefault(Schema.String.check(Schema.isMinLength(1)), "papo"),
  outputDir: withDefault(Schema.String, "runs"),
  /** Training steps (scaled from ≈202). */
  maxSteps: withDefault(PositiveInt, 100),
  /** Checkpoint every N steps (0: only at the end and on Ctrl-C). */
  saveFreq: withDefault(NonNegativeInt, 25),
  /** Checkpoints kept. */
  saveLimit: withDefault(PositiveInt, 3),
  /** Evaluate every N steps (0: only at the end). */
  valFreq: withDefault(NonNegativeInt, 0),
  /** Greedy accuracy per test subset every N steps, logged as `val/greedy_accuracy/<subset>` (a learning curve; 0: never). */
  curveFreq: withDefault(NonNegativeInt, 0),
  /** avg@k: responses per test question (the paper: avg@8 at temperature 1.0). */
  valAvgK: withDefault(PositiveInt, 8),
  /** 0 means greedy decoding. */
  valTemperature: withDefault(NonNegative, 1.0),
  /** Log sample rollouts (images, response, reward) every N steps (0: never). */
  logSampleFreq: withDefault(NonNegativeInt, 10),
  numSamples: withDefault(PositiveInt, 4),
  /**
   * Run the masked no-grad pass for every method, so GRPO and DAPO also log KL_prcp and both entropies
   * (at θ_old, outside the loss) and curves compare across methods. Costs one forward pass per step.
   */
  monitorPerception: withDefault(Schema.Boolean, true),
  /** Stop after this many non-finite losses or gradients in a row (each one skips its update). */
  maxConsecutiveNonFinite: withDefault(PositiveInt, 3),
  /** Seed of initialization, masks, sampling. */
  seed: withDefault(Schema.Int, 1),
  backend: withDefault(Schema.Literals(backendNames), "auto"),
  /**
   * 2: a worker-thread replica of the model takes half of every rollout, log-prob pass and update (tfjs-wasm
   * uses one core in Node; this uses the second); sampling draws then depend on the count. Unset: what the
   * machine has ({@link defaultThreads}).
   */
  threads: withDefault(Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 2 })), defaultThreads),
  /** Console output: a progress bar on a terminal, a line per step otherwise. */
  logger: withDefault(Schema.Literals(["auto", "bar", "lines", "quiet"]), "auto"),
  collapseGuard: section(CollapseGuardSettings)
})

/**
 * Where `papo sft` takes each training example's target: its gold `response`, its `answer` in the reward's
 * format (`<think></think>\boxed{answer}`), or the response when present and the answer otherwise.
 *
 * @example
 * sftTargets[2] // => "response-or-answer" (the default)
 *
 * @category configuration
 */
export const sftTargets = ["response", "answer", "response-or-answer"] as const

const SftConfig = Schema.Struct({
  /** The warm start's target (see {@link sftTargets}); answer-only data trains with the default. */
  target: withDefault(Schema.Literals(sftTargets), "response-or-answer"),
  /** Optimizer steps of the warm start on gold traces. */
  steps: withDefault(PositiveInt, 300),
  batchSize: withDefault(PositiveInt, 32),
  /** Higher than RL's: SFT learns from scratch. */
  lr: withDefault(Positive, 2e-3),
  /** Linear warm-up, then a cosine decay to 0.1·lr at the last step. */
  warmupSteps: withDefault(NonNegativeInt, 20),
  weightDecay: withDefault(NonNegative, 0.01),
  maxGradNorm: withDefault(Positive, 1.0)
})

/**
 * The whole config schema. Decoding `{}` gives every default.
 *
 * @category configuration
 */
export const Config = Schema.Struct({
  /** The preset the values were resolved from (informational once resolved). */
  preset: withDefault(Schema.Literals(presetNames), "grpo"),
  data: section(DataConfig),
  algorithm: section(AlgorithmConfig),
  worker: section(WorkerConfig),
  trainer: section(TrainerConfig),
  sft: section(SftConfig)
})

/**
 * A resolved config.
 *
 * @category configuration
 */
export type Config = typeof Config.Type

/**
 * The `@papo/loss` config a resolved config describes.
 *
 * @category configuration
 */
export const lossConfig = (config: Config, gradientAccumulation: number): PapoLoss.LossConfig => {
  const { algorithm: a, worker: { actor } } = config
  return {
    ...PapoLoss.presets.grpo,
    clipRatioLow: actor.clipRatioLow,
    clipRatioHigh: actor.clipRatioHigh,
    clipRatioDual: actor.clipRatioDual,
    lossAggMode: actor.lossAvgMode,
    useKlLoss: a.useKlLoss,
    klPenalty: a.klPenalty,
    klCoef: a.klCoef,
    useKlPrcp: a.useKlPrcp,
    klPrcpPenalty: a.klPrcpPenalty,
    klPrcpCoef: a.klPrcpCoef,
    useAugEntropyLoss: actor.useAugEntropyLoss,
    augEntropyLossCoef: actor.augEntropyLossCoef,
    useOriEntropyLoss: actor.useOriEntropyLoss,
    oriEntropyLossCoef: actor.oriEntropyLossCoef,
    recomputeMaskedLogProbs: actor.recomputeMaskedLogProbs,
    gradientAccumulation
  }
}

/**
 * Every default, as decoding `{}` gives it.
 *
 * @category configuration
 */
export const defaultConfig: Config = Schema.decodeUnknownSync(Config)({})

/**
 * The resolved config as YAML (what a run writes to `config.yaml`; it loads back to the same config).
 *
 * @category configuration
 */
export const toYaml = (config: Config): string => YAML.stringify(config)
