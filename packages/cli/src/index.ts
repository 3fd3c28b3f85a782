/**
 * @papo/cli: the command-line parsing of papo-ts's apps (`papo`, `papo-experiment`, `papo-conformance`),
 * with `effect/cli` on Node 20.
 *
 * @since 0.1.0
 */
export * as CommandLine from "./CommandLine.js"
