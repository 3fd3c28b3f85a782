/**
 * @papo/trainer: the `papo` trainer — config, data, SFT warm start, GRPO / DAPO / PAPO training,
 * evaluation and checkpoints — as a facade a script can call. The step's parts (rollout, experience,
 * update, metrics), the session, progress output and image decoding are internal modules.
 *
 * @example
 * import { ConfigLoad, Train } from "@papo/trainer"
 * const config = await Effect.runPromise(ConfigLoad.loadConfig({ overrides: ["preset=papo-g"] }))
 * const result = await Train.runPromise(Train.train(config), config)
 * result.step // => config.trainer.maxSteps
 *
 * @since 0.1.0
 */

/** The commands `train`, `sft`, `evaluate` as Effects, `withVerifier`/`runPromise`, and their run errors. */
export * as Train from "./Train.js"
/** The config schema (every key and default), `toYaml`, and the types of a resolved config. */
export * as Config from "./Config.js"
/** `loadConfig`: a YAML file, a preset and dotted overrides into a checked config (`ConfigError`). */
export * as ConfigLoad from "./ConfigLoad.js"
/** The named presets (`grpo`, `dapo`, `papo-g`, `papo-d`, …) as config overrides. */
export * as Presets from "./Presets.js"
/** Loading the train and test splits (JSONL, Parquet, built-in tasks) and its errors (`DatasetError`, too-long records). */
export * as Dataset from "./Dataset.js"
/** An example (problem, image, answer, vision dependency) and `classify`, the outcome of a response. */
export * as Example from "./Example.js"
/** The `cued` built-in task: a digit drawn by code next to a cue, for perception studies. */
export * as Cued from "./Cued.js"
/** Evaluation results (avg@k, subsets, perception errors) and `formatEval`. */
export * as Evaluate from "./Evaluate.js"
/** The run folder: config.yaml, metrics.jsonl, events, eval files and checkpoints, read back with their errors. */
export * as RunFolder from "./RunFolder.js"
/** The `Verifier` service (MathRuler in this thread, or a worker pool) that grades responses. */
export * as Verifier from "./Verifier.js"
/** Opening a session from a checkpoint whose tokenizer lacks the data's characters, or that cannot start. */
export { CheckpointIncompatibleError, SessionError } from "./Session.js"
/** `sft.target=response` on data without gold responses. */
export { MissingGoldResponseError } from "./Sft.js"
/** Dynamic sampling (DAPO) that ran out of tries to fill a batch. */
export { DynamicSamplingError } from "./Step.js"
