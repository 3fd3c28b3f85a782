/**
 * Parsing a command line with `effect/cli` and nothing else: no `@effect/platform-node` (it declares
 * Node ≥ 22), so the few services `effect/cli` asks for are given here, none of which parsing touches.
 *
 * An app declares its commands with `Command`, `Flag` and `Argument` as usual, each handler handing its
 * parsed input to `done`; {@link parse} runs them on `argv` and succeeds with that input, or fails
 * with a {@link UsageError} holding what to print and the exit code: the app's own help text (code 0)
 * for `-h` / `--help`, the app's one-line usage after a short reason for a bad command line (code 2).
 * Only `--help` is a built-in flag (effect/cli's `--version`, `--wizard`, `--completions` and
 * `--log-level` are off).
 *
 * @since 0.1.0
 */
import { Cause, Data, Effect, Exit, FileSystem, Layer, Path, Schema, Stdio, Terminal } from "effect"
import { Argument, CliConfig, type CliError, CliOutput, Command, GlobalFlag } from "effect/cli"
import { ChildProcessSpawner } from "effect/process"

/**
 * A command line that asks for help (`code` 0, print `message` to stdout) or cannot be used (`code` 2,
 * print it to stderr).
 *
 * @example
 * new UsageError({ message: "usage: papo <train|sft|eval>", code: 2 }).code // => 2
 *
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string; readonly code: 0 | 2 }> {}

/**
 * An app's texts: the one-line usage printed after an error, and the help of each command path
 * (`["papo"]`, `["papo", "train"]`).
 *
 * @category models
 */
export interface Texts {
  readonly usage: string
  readonly help: (commandPath: ReadonlyArray<string>) => string
}

const unused = (what: string) => Effect.die(`effect/cli asked for ${what} while parsing`)

/**
 * The services `effect/cli` requires, for parsing only: `Path`, and stand-ins for the file system,
 * terminal, standard streams and child processes that fail loudly if used (the built-ins that would use
 * them are off). What it would print goes to `shown` as a {@link UsageError}.
 */
const parsingLayer = (argv: ReadonlyArray<string>, texts: Texts, shown: { event?: UsageError }) =>
  Layer.mergeAll(
    FileSystem.layerNoop({}),
    Path.layer,
    Stdio.layerTest({ args: Effect.succeed(argv) }),
    Layer.succeed(Terminal.Terminal, Terminal.make({
      columns: Effect.succeed(80),
      rows: Effect.succeed(24),
      size: unused("the terminal size"),
      readInput: unused("terminal input"),
      readLine: unused("a line of input"),
      display: () => unused("the terminal")
    })),
    Layer.succeed(ChildProcessSpawner.ChildProcessSpawner, ChildProcessSpawner.make(() => unused("a child process"))),
    CliConfig.layer({ builtIns: [GlobalFlag.Help] }),
    CliOutput.layerPresenter({
      present: (event) =>
        Effect.sync(() => {
          shown.event = event._tag === "InvalidInvocation"
            ? new UsageError({ message: describeErrors(event.errors, texts.usage), code: 2 })
            : event._tag === "Help" && event.reason === "Requested"
            ? new UsageError({ message: texts.help(event.commandPath), code: 0 })
            : new UsageError({ message: texts.usage, code: 2 })
        })
    })
  )

/** What a value should be, without the schema's framing ("Schema validation failed: Expected …, got …"). */
const expectation = (expected: string): string =>
  expected.replace(/^Schema validation failed: /, "").replace(/^Expected /, "").replace(/, got .*$/s, "")

/**
 * One line per problem in the apps' wording, then the usage line.
 *
 * @example
 * describeErrors([new CliError.UnrecognizedOption({ option: "--resume", suggestions: [] })], "usage: papo …")
 * // => 'unexpected argument "--resume"\nusage: papo …'
 *
 * @category errors
 */
export const describeErrors = (errors: ReadonlyArray<CliError.NonShowHelpErrors>, usage: string): string => {
  const lines = errors.map((e): string | null => {
    switch (e._tag) {
      case "UnknownSubcommand":
        return `unknown command "${e.subcommand}"`
      case "UnrecognizedOption":
        return `unexpected argument "${e.option}"`
      case "UnexpectedArgument":
        return `unexpected argument "${e.arguments[0] ?? ""}"`
      case "DuplicateOption":
        return `${e.option} is given more than once`
      case "MissingOption":
        return `--${e.option} is required`
      case "MissingArgument":
        return null // the usage line says what is missing
      case "InvalidValue":
        return e.kind === "argument"
          ? `unexpected argument "${e.value}"`
          : e.value === ""
          ? `--${e.option} needs a value`
          : `--${e.option} needs ${expectation(e.expected)}, got "${e.value}"`
      default:
        return e.message
    }
  })
  return [...lines.filter((l): l is string => l !== null), usage].join("\n")
}

/**
 * The trailing `key.path=value` overrides of a command line (anything else there is an unexpected
 * argument).
 *
 * @example
 * Command.make("papo-experiment", { study: Argument.String("study"), overrides }, done)
 *
 * @category constructors
 */
export const overrides = Argument.String("key.path=value").pipe(
  Argument.withSchema(Schema.String.check(Schema.makeFilter((s) => s.includes("=") && !s.startsWith("-"), { expected: "key.path=value" }))),
  Argument.variadic()
)

/**
 * Parses `argv` (without the node and script paths) with the commands `build` declares, each handler
 * passing its parsed input to `done`. Succeeds with that input; fails with a {@link UsageError} for help
 * or a bad command line. Does no I/O, so it can run synchronously (`Effect.runSyncExit`).
 *
 * @example
 * parse(["--out", "r.json", "cases.json"], texts, (done) =>
 *   Command.make("check", { file: Argument.String("file"), out: Flag.String("out").pipe(Flag.optional) }, done))
 * // => Effect.succeed({ file: "cases.json", out: Option.some("r.json") })
 *
 * @category constructors
 */
export const parse = <A, Name extends string, Input, ContextInput, E>(
  argv: ReadonlyArray<string>,
  texts: Texts,
  build: (done: (value: A) => Effect.Effect<void>) => Command.Command<Name, Input, ContextInput, E, never>
): Effect.Effect<A, UsageError> =>
  Effect.gen(function*() {
    const parsed: { value?: A } = {}
    const shown: { event?: UsageError } = {}
    const command = build((value) => Effect.sync(() => void (parsed.value = value)))
    const exit = yield* Effect.exit(
      Command.runWith(command, { version: "" })(argv).pipe(Effect.provide(parsingLayer(argv, texts, shown)))
    )
    if (shown.event !== undefined) return yield* shown.event
    if (Exit.isFailure(exit) && !Cause.hasFails(exit.cause)) return yield* Effect.die(Cause.squash(exit.cause)) // a bug
    if (!("value" in parsed)) return yield* new UsageError({ message: texts.usage, code: 2 })
    return parsed.value as A
  })
