/**
 * @papo/reward: verifiable rewards for RLVR. Answer extraction, grading like MathRuler (PAPO / EasyR1)
 * and like Math-Verify (TRL), PAPO's format-weighted score, outcomes as data, and a worker pool with a
 * hard wall-clock limit per verification.
 *
 * @since 0.1.0
 */
export * as Extract from "./Extract.js"
export * as Grader from "./Grader.js"
export * as MathRuler from "./MathRuler.js"
export * as MathVerify from "./MathVerify.js"
export { type PoolOptions, type PoolScoreOptions, VerifierPool } from "./Pool.js"
