/**
 * @papo/loss: PAPO's objective (Wang et al., arXiv 2507.06448) as pure, synchronous functions over
 * TensorFlow.js tensors, matched number for number against the official implementation.
 *
 * Every function returns its value and its metrics (under the reference's names) and never logs.
 *
 * @since 0.1.0
 */
export * as Advantage from "./Advantage.js"
export * as Aggregation from "./Aggregation.js"
export * as DynamicSampling from "./DynamicSampling.js"
export * as Entropy from "./Entropy.js"
export * as Kl from "./Kl.js"
export * as PapoLoss from "./PapoLoss.js"
export * as PerceptionKl from "./PerceptionKl.js"
export * as PolicyLoss from "./PolicyLoss.js"
export * as Schedule from "./Schedule.js"
