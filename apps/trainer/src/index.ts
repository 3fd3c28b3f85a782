/**
 * @papo/trainer: the `papo` trainer — config, data, SFT warm start, GRPO / DAPO / PAPO training,
 * evaluation and checkpoints — as modules a script can call.
 *
 * @since 0.1.0
 */
export * as CollapseGuard from "./CollapseGuard.js"
export * as Config from "./Config.js"
export * as ConfigLoad from "./ConfigLoad.js"
export * as Cued from "./Cued.js"
export * as Dataset from "./Dataset.js"
export * as Digits from "./Digits.js"
export * as Evaluate from "./Evaluate.js"
export * as Example from "./Example.js"
export * as Experience from "./Experience.js"
export * as Images from "./Images.js"
export * as Metrics from "./Metrics.js"
export * as Parquet from "./Parquet.js"
export * as Presets from "./Presets.js"
export * as Progress from "./Progress.js"
export * as Rollout from "./Rollout.js"
export * as RunFolder from "./RunFolder.js"
export * as Session from "./Session.js"
export * as Shapes from "./Shapes.js"
export * as Step from "./Step.js"
export * as Train from "./Train.js"
export * as Update from "./Update.js"
export * as Verifier from "./Verifier.js"
