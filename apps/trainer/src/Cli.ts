/**
 * The `papo` command line: usage, per-command help and argument parsing (no side effects).
 *
 * @since 0.1.0
 */
import { presetNames } from "./Presets.js"

const common = `Options:
  --config <file.yaml>   a config file (EasyR1 layout: data / algorithm / worker.actor / worker.rollout / trainer / sft)
                         data.train / data.test: digits, shapes, or a .jsonl or .parquet file (EasyR1 records)
  --preset <name>        ${presetNames.join(", ")}
  --print-config         print the resolved config and exit
  key.path=value         override one key, e.g. algorithm.klPrcpCoef=0.02 trainer.maxSteps=50
  -h, --help             this help
Precedence: defaults < preset < config file < overrides. See apps/trainer/README.md for every key.`

/**
 * The help text of each command.
 *
 * @category constructors
 */
export const help: Readonly<Record<string, string>> = {
  train: `papo train: RL (GRPO, DAPO, PAPO-G, PAPO-D) from worker.actor.init (e.g. an sft run folder).
Writes runs/<trainer.experimentName>/: config.yaml, metrics.jsonl, eval.json, checkpoints/, samples/.
  --resume               continue from the newest complete checkpoint of the run folder
Ctrl-C stops after the current step and saves a checkpoint.
${common}`,
  sft: `papo sft: supervised warm start on the training split's gold responses (records without one: the answer
  as <think></think>\\boxed{answer}; sft.target chooses), then an evaluation.
  --resume               continue from the newest complete checkpoint of the run folder
${common}`,
  eval: `papo eval: accuracy avg@k (trainer.valAvgK at trainer.valTemperature) on data.test, per subset, with
perception / reasoning / format error counts; writes eval.json into the run folder.
  --checkpoint <path>    a run folder, trainer checkpoint or model checkpoint (default: worker.actor.init, else the run folder)
${common}`
}

/**
 * The one-line usage.
 *
 * @category constructors
 */
export const usage = `usage: papo <train|sft|eval> [options] [key.path=value …]   (papo <command> --help)`

/**
 * A command line that asks for help (`code` 0) or cannot be used (`code` 2); `message` is what to print.
 *
 * @category errors
 */
export class UsageError {
  readonly _tag = "UsageError"
  constructor(readonly message: string, readonly code = 2) {}
}

/**
 * A parsed command line.
 *
 * @category models
 */
export interface Arguments {
  readonly command: "train" | "sft" | "eval"
  readonly file: string | undefined
  readonly checkpoint: string | undefined
  readonly resume: boolean
  readonly printConfig: boolean
  /** Dotted overrides in order (`--preset x` becomes `preset=x`, first). */
  readonly overrides: ReadonlyArray<string>
}

/**
 * Parses `papo <command> …`; throws a {@link UsageError} for help or a bad command line.
 *
 * @example
 * parseArgs(["train", "--preset", "papo-g", "trainer.maxSteps=5"]).overrides // => ["preset=papo-g", "trainer.maxSteps=5"]
 *
 * @category constructors
 */
export const parseArgs = (argv: ReadonlyArray<string>): Arguments => {
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
  return { command: command as Arguments["command"], file, checkpoint, resume, printConfig, overrides }
}
