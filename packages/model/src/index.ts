/**
 * @papo/model: a small vision-language decoder policy in TensorFlow.js, with KV-cache sampling,
 * per-token log-probs, AdamW, a tokenizer and safetensors checkpoints.
 *
 * @since 0.1.0
 */
export * as Checkpoint from "./Checkpoint.js"
export * as Config from "./Config.js"
export * as Optimizer from "./Optimizer.js"
export * as Parallel from "./Parallel.js"
export * as Policy from "./Policy.js"
export * as Sampling from "./Sampling.js"
export * as Tokenizer from "./Tokenizer.js"
