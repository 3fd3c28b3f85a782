/**
 * The `papo` command line: usage, per-command help and argument parsing (no side effects), with
 * `effect/cli` through `@papo/cli`. The on/off flags are declared in one table ({@link switches}).
 *
 * @since 0.1.0
 */
import { CommandLine } from "@papo/cli"
import { Effect, Option } from "effect"
import { Command, Flag } from "effect/cli"
import { presetNames } from "./Presets.js"

const common = `Options:
  --config <file.yaml>   a config file (EasyR1 layout: data / algorithm / worker.actor / worker.rollout / trainer / sft)
                         data.train / data.test: digits, shapes, or a .jsonl or .parquet file (EasyR1 records)
  --preset <name>        ${presetNames.join(", ")}
  --print-config         print the resolved config and exit
  key.path=value         override one key, e.g. algorithm.klPrcpCoef=0.02 trainer.maxSteps=50
  -h, --help             this help
Precedence: defaults < preset < config file < overrides. See apps/trainer/README.md for every key.`

const runFolder = `  --resume               continue from the newest intact checkpoint of the run folder
  --allow-config-change  with --resume: go on even if the model or algorithm keys differ from its config.yaml
  --overwrite            a fresh run into a folder that holds a run replaces it (else that is refused)`

/**
 * The help text of each command.
 *
 * @category constructors
 */
export const help: Readonly<Record<string, string>> = {
  train: `papo train: RL (GRPO, DAPO, PAPO-G, PAPO-D) from worker.actor.init (e.g. an sft run folder).
Writes runs/<trainer.experimentName>/: config.yaml, metrics.jsonl, eval.json, checkpoints/, samples/.
${runFolder}
Ctrl-C or SIGTERM stops after the current step and saves a checkpoint (exit 130).
${common}`,
  sft: `papo sft: supervised warm start on the training split's gold responses (records without one: the answer
  as <think></think>\\boxed{answer}; sft.target chooses), then an evaluation.
${runFolder}
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
export const UsageError = CommandLine.UsageError
/**
 * @category errors
 */
export type UsageError = CommandLine.UsageError

/**
 * The on/off flags, one line each: the `Arguments` field, the flag, and the commands that take it.
 *
 * @example
 * switches.resume.flag // => "resume"
 *
 * @category configuration
 */
export const switches = {
  resume: { flag: "resume", commands: ["train", "sft"] },
  overwrite: { flag: "overwrite", commands: ["train", "sft"] },
  allowConfigChange: { flag: "allow-config-change", commands: ["train", "sft"] },
  printConfig: { flag: "print-config", commands: ["train", "sft", "eval"] }
} as const satisfies Record<string, { readonly flag: string; readonly commands: ReadonlyArray<CommandName> }>

/**
 * A command of `papo`.
 *
 * @category models
 */
export type CommandName = "train" | "sft" | "eval"

/**
 * A parsed command line.
 *
 * @category models
 */
export type Arguments = {
  readonly command: CommandName
  readonly file: string | undefined
  readonly checkpoint: string | undefined
  /** Dotted overrides in order (`--preset x` becomes `preset=x`, first). */
  readonly overrides: ReadonlyArray<string>
} & { readonly [K in keyof typeof switches]: boolean }

const commandNames: ReadonlyArray<CommandName> = ["train", "sft", "eval"]

const switchFlags = (command: CommandName) =>
  Object.fromEntries(
    Object.entries(switches)
      .filter(([, s]) => (s.commands as ReadonlyArray<CommandName>).includes(command))
      .map(([field, s]) => [field, Flag.Boolean(s.flag).pipe(Flag.withDefault(false))])
  )

const flagsOf = (command: CommandName) => ({
  config: Flag.String("config").pipe(Flag.optional),
  preset: Flag.String("preset").pipe(Flag.optional),
  switches: switchFlags(command),
  overrides: CommandLine.overrides
})

type Parsed = Command.Command.Config.Infer<ReturnType<typeof flagsOf>>

const argumentsOf = (command: CommandName, input: Parsed, checkpoint: string | undefined): Arguments => {
  const on = input.switches as Partial<Record<keyof typeof switches, boolean>>
  return {
    command,
    file: Option.getOrUndefined(input.config),
    checkpoint,
    overrides: [...Option.match(input.preset, { onNone: () => [], onSome: (p) => [`preset=${p}`] }), ...input.overrides],
    ...Object.fromEntries(Object.keys(switches).map((k) => [k, on[k as keyof typeof switches] === true])) as {
      readonly [K in keyof typeof switches]: boolean
    }
  }
}

const commandOf = (command: CommandName, done: (a: Arguments) => Effect.Effect<void>) =>
  command === "eval"
    ? Command.make(command, { ...flagsOf(command), checkpoint: Flag.String("checkpoint").pipe(Flag.optional) },
      (input) => done(argumentsOf(command, input, Option.getOrUndefined(input.checkpoint))))
    : Command.make(command, flagsOf(command), (input) => done(argumentsOf(command, input, undefined)))

/**
 * Parses `papo <command> …`; fails with a {@link UsageError} for help (code 0) or a bad command line (code 2).
 *
 * @example
 * Effect.runSync(parseArgs(["train", "--preset", "papo-g", "trainer.maxSteps=5"])).overrides // => ["preset=papo-g", "trainer.maxSteps=5"]
 *
 * @category constructors
 */
export const parseArgs = (argv: ReadonlyArray<string>): Effect.Effect<Arguments, UsageError> =>
  CommandLine.parse(
    argv,
    { usage, help: (path) => (path.length > 1 ? help[path[1]!] ?? usage : usage) },
    (done: (a: Arguments) => Effect.Effect<void>) => Command.make("papo").pipe(Command.withSubcommands(commandNames.map((c) => commandOf(c, done))))
  ).pipe(
    Effect.filterOrFail(
      (a) => !(a.resume && a.overwrite),
      () => new UsageError({ message: `--resume and --overwrite exclude each other\n${usage}`, code: 2 })
    )
  )
