/**
 * The `papo-conformance` command line (parsing only, no side effects), with `effect/cli` through
 * `@papo/cli`.
 *
 * @since 0.1.0
 */
import { type BackendName, backendNames } from "@papo/backend"
import { CommandLine } from "@papo/cli"
import { Effect, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"

/**
 * The usage (also the help).
 *
 * @category constructors
 */
export const usage =
  "usage: npm run conformance -- <file.json> [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu] [--out results.json] [--timeout-ms N]"

/**
 * A parsed command line.
 *
 * @category models
 */
export interface Arguments {
  readonly file: string
  readonly backend: BackendName
  readonly out: string | undefined
  /** The hard time limit of one verification (verifier corpora). */
  readonly timeoutMs: number
}

const PositiveNumber = Schema.Number.check(Schema.makeFilter((n) => n > 0, { expected: "a positive number" }))

/**
 * Parses `papo-conformance …`; fails with a `UsageError` for help (code 0) or a bad command line (code 2).
 *
 * @example
 * parseArgs(["cases.json", "--backend", "cpu"]) // => Effect.succeed({ file: "cases.json", backend: "cpu", out: undefined, timeoutMs: 5000 })
 *
 * @category constructors
 */
export const parseArgs = (argv: ReadonlyArray<string>): Effect.Effect<Arguments, CommandLine.UsageError> =>
  CommandLine.parse(argv, { usage, help: () => usage }, (done: (a: Arguments) => Effect.Effect<void>) =>
    Command.make("papo-conformance", {
      file: Argument.String("file.json"),
      backend: Flag.Literals("backend", backendNames).pipe(Flag.withDefault("auto" as BackendName)),
      out: Flag.String("out").pipe(Flag.optional),
      timeoutMs: Flag.String("timeout-ms").pipe(Flag.withSchema(Schema.NumberFromString.pipe(Schema.decodeTo(PositiveNumber))), Flag.withDefault(5000))
    }, (a) => done({ ...a, out: Option.getOrUndefined(a.out) })))
