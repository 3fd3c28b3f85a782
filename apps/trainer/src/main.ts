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
import { type Config, loadConfig, presetNames, toYaml } from "./Config.js"
import { formatEval } from "./Evaluate.js"
import { evaluate, runPromise, sft, train } from "./Train.js"

const common = `Options:
  --config <file.yaml>   a config file (EasyR1 layout: data / algorithm / worker.actor / worker.rollout / trainer / sft)
  --preset <name>        ${presetNames.join(", ")}
  --print-config         print the resolved config and exit
  key.path=value         override one key, e.g. algorithm.klPrcpCoef=0.02 trainer.maxSteps=50
  -h, --help             this help
Precedence: defaults < preset < config file < overrides. See apps/trainer/README.md for every key.`

const help: Record<string, string> = {
  train: `papo train: RL (GRPO, DAPO, PAPO-G, PAPO-D) from worker.actor.init (e.g. an sft run folder).
Writes runs/<trainer.experimentName>/: config.yaml, metrics.jsonl, eval.json, checkpoints/, samples/.
  --resume               continue from the newest complete checkpoint of the run folder
Ctrl-C stops after the current step and saves a checkpoint.
${common}`,
  sft: `papo sft: supervised warm start on the training split's gold responses, then an evaluation.
  --resume               continue from the newest complete checkpoint of the run folder
${common}`,
  eval: `papo eval: accuracy avg@k (trainer.valAvgK at trainer.valTemperature) on data.test, per subset, with
perception / reasoning / format error counts; writes eval.json into the run folder.
  --checkpoint <path>    a run folder, trainer checkpoint or model checkpoint (default: worker.actor.init, else the run folder)
${common}`
}

const usage = `usage: papo <train|sft|eval> [options] [key.path=value …]   (papo <command> --help)`

class UsageError {
  readonly _tag = "UsageError"
  constructor(readonly message: string, readonly code = 2) {}
}

const parse = (argv: ReadonlyArray<string>) => {
  const [command, ...rest] = argv
  if (command === undefined || command === "-h" || command === "--help") throw new UsageError(usage, command ? 0 : 2)
  if (!(command in help)) throw new UsageError(`unknown command "${command}"\n${usage}`)
  let file: string | undefined
  let checkpoint: string | undefined
  let resume = false
  let printConfig = false
  const overrides: Array<string> = []
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!
    const value = () => {
      const v = rest[++i]
      if (v === undefined) throw new UsageError(`${a} needs a value\n${usage}`)
      return v
    }
    if (a === "-h" || a === "--help") throw new UsageError(help[command]!, 0)
    else if (a === "--config") file = value()
    else if (a === "--preset") overrides.unshift(`preset=${value()}`)
    else if (a === "--checkpoint" && command === "eval") checkpoint = value()
    else if (a === "--resume" && command !== "eval") resume = true
    else if (a === "--print-config") printConfig = true
    else if (a.includes("=") && !a.startsWith("-")) overrides.push(a)
    else throw new UsageError(`unexpected argument "${a}"\n${usage}`)
  }
  return { command, file, checkpoint, resume, printConfig, overrides }
}

const main = async (): Promise<number> => {
  let args: ReturnType<typeof parse>
  try {
    args = parse(process.argv.slice(2))
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
    )
  )
}

main().then((code) => {
  process.exitCode = code
  // tfjs-wasm keeps no handles, but a pending SIGINT listener would: exit explicitly.
  process.exit(code)
})
