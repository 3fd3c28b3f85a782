#!/usr/bin/env node
/**
 * `papo`: the command line over {@link train}, {@link sft} and {@link evaluate} (see `Train.ts`).
 *
 *     papo train [--config run.yaml] [--preset papo-g] [--resume] [key.path=value …]
 *     papo sft   [--config run.yaml] [key.path=value …]
 *     papo eval  [--config run.yaml] [--checkpoint runs/x] [key.path=value …]
 *
 * Exit codes: 0 done, 1 the run failed, 2 bad command line or config, 130 interrupted (checkpoint saved).
 */
import { Cause, Console, Effect } from "effect"
import { type Arguments, parseArgs, UsageError } from "./Cli.js"
import { type Config, toYaml } from "./Config.js"
import { loadConfig } from "./ConfigLoad.js"

const main = async (): Promise<number> => {
  let args: Arguments
  try {
    args = parseArgs(process.argv.slice(2))
  } catch (e) {
    if (e instanceof UsageError) {
      ;(e.code === 0 ? console.log : console.error)(e.message)
      return e.code
    }
    throw e
  }
  const loaded = await Effect.runPromise(Effect.result(loadConfig({ file: args.file, overrides: args.overrides })))
  if (loaded._tag === "Failure") {
    console.error(loaded.failure.message)
    return 2
  }
  const config: Config = loaded.success
  if (args.printConfig) {
    console.log(toYaml(config))
    return 0
  }
  // Loaded only now: a bad command line or config is reported without loading the model stack.
  const { evaluate, runPromise, sft, train } = await import("./Train.js")
  const { formatEval } = await import("./Evaluate.js")
  const controller = new AbortController()
  process.on("SIGINT", () => {
    if (controller.signal.aborted) process.exit(130)
    console.error("\nCtrl-C: stopping after this step and saving a checkpoint (Ctrl-C again to quit now)")
    controller.abort()
  })
  const program = args.command === "train"
    ? train(config, { resume: args.resume, signal: controller.signal }).pipe(Effect.map((r) => (r.interrupted ? 130 : 0)))
    : args.command === "sft"
    ? sft(config, { resume: args.resume, signal: controller.signal }).pipe(Effect.map((r) => (r.interrupted ? 130 : 0)))
    : evaluate(config, { ...(args.checkpoint ? { checkpoint: args.checkpoint } : {}) }).pipe(
      Effect.tap((r) => Console.log(`${formatEval(r.result)}\ncheckpoint: ${r.checkpoint}`)),
      Effect.as(0)
    )
  return runPromise(
    program.pipe(
      Effect.catchCause((cause) =>
        Effect.sync(() => {
          const err = Cause.squash(cause)
          console.error(`papo ${args.command}: ${err instanceof Error ? err.message : String(err)}`)
          return 1
        })
      )
    ),
    config
  )
}

main().then((code) => {
  process.exitCode = code
  // tfjs-wasm keeps no handles, but a pending SIGINT listener would: exit explicitly.
  process.exit(code)
})
