/**
 * The `papo-experiment` command line (parsing only, no side effects), with `effect/cli` through
 * `@papo/cli`.
 *
 * @since 0.1.0
 */
import { CommandLine } from "@papo/cli"
import type { Effect } from "effect"
import { Argument, Command, Flag } from "effect/cli"

/**
 * The usage (also the help), listing the studies there are.
 *
 * @example
 * usageOf(["compare", "seeds"]).split("\n")[1] // => "studies: compare, seeds"
 *
 * @category constructors
 */
export const usageOf = (studies: ReadonlyArray<string>): string =>
  `usage: npm run experiment -- <study> [--fresh] [--backend auto|wasm|cpu] [key.path=value ...]\nstudies: ${studies.join(", ")}`

/**
 * A parsed command line.
 *
 * @category models
 */
export interface Arguments {
  /** A study name (apps/experiments/studies/<study>.yaml) or a YAML file. */
  readonly study: string
  /** Start over instead of picking up finished runs. */
  readonly fresh: boolean
  /** `trainer.backend` of every run. */
  readonly backend: string
  /** Dotted overrides for every run of the study. */
  readonly overrides: ReadonlyArray<string>
}

/**
 * Parses `papo-experiment …`; fails with a `UsageError` for help (code 0) or a bad command line (code 2).
 *
 * @example
 * parseArgs(["compare", "--fresh", "trainer.maxSteps=10"], ["compare"])
 * // => Effect.succeed({ study: "compare", fresh: true, backend: "auto", overrides: ["trainer.maxSteps=10"] })
 *
 * @category constructors
 */
export const parseArgs = (argv: ReadonlyArray<string>, studies: ReadonlyArray<string>): Effect.Effect<Arguments, CommandLine.UsageError> => {
  const usage = usageOf(studies)
  return CommandLine.parse(argv, { usage, help: () => usage }, (done: (a: Arguments) => Effect.Effect<void>) =>
    Command.make("papo-experiment", {
      study: Argument.String("study"),
      fresh: Flag.Boolean("fresh").pipe(Flag.withDefault(false)),
      backend: Flag.String("backend").pipe(Flag.withDefault("auto")),
      overrides: CommandLine.overrides
    }, done))
}
