/**
 * @papo/plot: PNG figures for training reports.
 *
 * @since 0.1.0
 */
export * from "./Chart.js"
