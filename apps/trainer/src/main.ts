#!/usr/bin/env node
/**
 * `papo`: the command line over {@link train}, {@link sft} and {@link evaluate} (see `Train.ts`).
 *
 *     papo train [--config run.yaml] [--preset papo-g] [--resume | --overwrite] [key.path=value …]
 *     papo sft   [--config run.yaml] [--resume | --overwrite] [key.path=value …]
 *     papo eval  [--config run.yaml] [--checkpoint runs/x] [key.path=value …]
 *
 * The command runs as one fiber (`runMain`): SIGINT (Ctrl-C) and SIGTERM interrupt it, the current step
 * finishes, the run's finalizer saves a checkpoint and closes the session, and the process exits 130; a
 * second signal exits at once.
 *
 * Exit codes: 0 done, 1 the run failed, 2 bad command line or config, 130 interrupted (checkpoint saved).
 */
import { Cause, Console, Data, Effect, Exit, Runtime } from "effect"
import { type Arguments, parseArgs } from "./Cli.js"
import { toYaml } from "./Config.js"
import { loadConfig } from "./ConfigLoad.js"
import type { Verifier } from "./Verifier.js"

/** A command line or config that cannot be run (exit 2), or a request for help (exit 0). */
class CommandLineError extends Data.TaggedError("CommandLineError")<{ readonly text: string; readonly code: number }> {}

const parse = (argv: ReadonlyArray<string>): Effect.Effect<Arguments, CommandLineError> =>
  parseArgs(argv).pipe(Effect.mapError((e) => new CommandLineError({ text: e.message, code: e.code })))

const program = Effect.gen(function*() {
  const args = yield* parse(process.argv.slice(2))
  const config = yield* loadConfig({ file: args.file, overrides: args.overrides }).pipe(
    Effect.mapError((e) => new CommandLineError({ text: e.message, code: 2 }))
  )
  if (args.printConfig) return yield* Console.log(toYaml(config))
  // Loaded only now: a bad command line or config is reported without loading the model stack.
  const { evaluate, sft, train, withVerifier } = yield* Effect.promise(() => import("./Train.js"))
  const { formatEval } = yield* Effect.promise(() => import("./Evaluate.js"))
  const options = { resume: args.resume, overwrite: args.overwrite, allowConfigChange: args.allowConfigChange }
  const command: Effect.Effect<unknown, unknown, Verifier> = args.command === "train"
    ? train(config, options)
    : args.command === "sft"
    ? sft(config, options)
    : evaluate(config, args.checkpoint ? { checkpoint: args.checkpoint } : {}).pipe(
      Effect.tap((r) => Console.log(`${formatEval(r.result)}\ncheckpoint: ${r.checkpoint}`))
    )
  yield* withVerifier(command, config)
})

/** What the process prints for a failure and the code it exits with. */
const report = (args: ReadonlyArray<string>, exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit)) return 0
  if (Cause.hasInterruptsOnly(exit.cause)) return 130
  const error = Cause.squash(exit.cause)
  if (error instanceof CommandLineError) {
    ;(error.code === 0 ? console.log : console.error)(error.text)
    return error.code
  }
  console.error(`papo ${args[0]}: ${error instanceof Error ? error.message : String(error)}`)
  return 1
}

/**
 * Runs the program as the main fiber: SIGINT and SIGTERM interrupt it (its finalizers run: checkpoint,
 * session), a second signal exits at once with 130; the exit code comes from {@link report}.
 */
const runMain = Runtime.makeRunMain(({ fiber }) => {
  let signalled = false
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(130)
    signalled = true
    console.error(`\n${signal}: stopping after this step and saving a checkpoint (${signal === "SIGINT" ? "Ctrl-C" : "signal"} again to quit now)`)
    fiber.interruptUnsafe()
  }
  process.on("SIGINT", onSignal)
  process.on("SIGTERM", onSignal)
  fiber.addObserver((exit) => {
    process.off("SIGINT", onSignal)
    process.off("SIGTERM", onSignal)
    // tfjs-wasm and the worker threads may keep handles: exit explicitly.
    process.exit(report(process.argv.slice(2), exit))
  })
})

runMain(program, { disableErrorReporting: true })
