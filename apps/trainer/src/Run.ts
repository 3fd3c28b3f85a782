/**
 * The run folder `<outputDir>/<experimentName>/` and what goes in it:
 *
 *     config.yaml         the resolved config (loads back to the same run)
 *     metrics.jsonl       one JSON object per step: {"step": k, "<metric>": value, …}
 *     eval.json           the latest evaluation
 *     checkpoints/step-000010/{actor,reference}/   model checkpoints (+ trainer state in actor's extra)
 *     samples/step-000010/   rollouts: PNG of original | masked image, and samples.jsonl
 *
 * Checkpoints are written to a temporary folder, fsynced, then renamed, so a `step-*` folder is always
 * complete; the newest `saveLimit` are kept. Console output: a progress bar with ETA on a terminal, a
 * line per step otherwise.
 *
 * @since 0.1.0
 */
import { appendFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { Checkpoint, type Optimizer, Policy, type Tokenizer } from "@papo/model"
import { Data, Effect } from "effect"
import { type Config, toYaml } from "./Config.js"
import * as Images from "./Images.js"

/**
 * A failure reading or writing the run folder.
 *
 * @category errors
 */
export class RunError extends Data.TaggedError("RunError")<{ readonly path: string; readonly reason: string }> {
  override get message(): string {
    return `${this.path}: ${this.reason}`
  }
}

const io = <A>(path: string, f: () => Promise<A>): Effect.Effect<A, RunError> =>
  Effect.tryPromise({ try: f, catch: (e) => new RunError({ path, reason: e instanceof Error ? e.message : String(e) }) })

/**
 * The folder of a config's run.
 *
 * @category constructors
 */
export const runDir = (config: Config): string => join(config.trainer.outputDir, config.trainer.experimentName)

/**
 * Creates the run folder and writes `config.yaml`. Without `resume`, what an earlier run left there
 * (metrics, evaluations, checkpoints, samples) is removed first, so nothing stale is mistaken for this
 * run's (e.g. an old, later checkpoint picked by `--resume` or by `worker.actor.init`).
 *
 * @category constructors
 */
export const prepare = (config: Config, resume: boolean): Effect.Effect<string, RunError> => {
  const dir = runDir(config)
  return io(dir, async () => {
    if (!resume) {
      const old = await readdir(dir).catch(() => [] as Array<string>)
      for (const f of old.filter((f) => ["metrics.jsonl", "eval.json", "checkpoints", "samples"].includes(f) || /^eval-step-\d+\.json$/.test(f))) {
        await rm(join(dir, f), { recursive: true, force: true })
      }
    }
    await mkdir(join(dir, "checkpoints"), { recursive: true })
    await writeFile(join(dir, "config.yaml"), toYaml(config))
    return dir
  })
}

/**
 * Creates a folder (for `eval` outside a training run).
 *
 * @category constructors
 */
export const prepareDir = (dir: string): Effect.Effect<void, RunError> => io(dir, () => mkdir(dir, { recursive: true }).then(() => {}))

/**
 * Appends one metrics line.
 *
 * @category constructors
 */
export const appendMetrics = (dir: string, step: number, metrics: Readonly<Record<string, number | string>>): Effect.Effect<void, RunError> =>
  io(join(dir, "metrics.jsonl"), () => appendFile(join(dir, "metrics.jsonl"), JSON.stringify({ step, ...metrics }) + "\n"))

/**
 * Reads `metrics.jsonl` back.
 *
 * @category constructors
 */
export const readMetrics = (dir: string): Effect.Effect<Array<Record<string, number>>, RunError> =>
  io(join(dir, "metrics.jsonl"), async () =>
    (await readFile(join(dir, "metrics.jsonl"), "utf8")).split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l)))

/**
 * Drops metrics lines after `step` (a resumed run rewrites the steps after its checkpoint); with
 * `droppedTo`, the dropped lines are kept in that file of the run folder (a rollback's evidence).
 *
 * @category constructors
 */
export const truncateMetrics = (dir: string, step: number, droppedTo?: string): Effect.Effect<void, RunError> =>
  io(join(dir, "metrics.jsonl"), async () => {
    const file = join(dir, "metrics.jsonl")
    const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").filter((l) => l.trim() !== "")
    const after = (l: string) => (JSON.parse(l) as { step: number }).step > step
    if (droppedTo !== undefined) await writeFile(join(dir, droppedTo), lines.filter(after).map((l) => l + "\n").join(""))
    await writeFile(file, lines.filter((l) => !after(l)).map((l) => l + "\n").join(""))
  })

/**
 * Appends one event (collapse warnings, rollbacks) to `events.jsonl`.
 *
 * @category constructors
 */
export const appendEvent = (dir: string, event: Readonly<Record<string, unknown>>): Effect.Effect<void, RunError> =>
  io(join(dir, "events.jsonl"), () => appendFile(join(dir, "events.jsonl"), JSON.stringify(event) + "\n"))

const checkpointSteps = async (dir: string) =>
  (await readdir(join(dir, "checkpoints")).catch(() => [] as Array<string>))
    .filter((f) => /^step-\d+$/.test(f))
    .map((f) => ({ name: f, step: Number(f.slice(5)) }))
    .sort((a, b) => a.step - b.step)

/**
 * Goes back to the newest checkpoint at or before `step`: deletes the later ones and returns its step,
 * or null (and deletes them all) when there is none.
 *
 * @category constructors
 */
export const rollBackCheckpoints = (dir: string, step: number): Effect.Effect<number | null, RunError> =>
  io(join(dir, "checkpoints"), async () => {
    const all = await checkpointSteps(dir)
    for (const c of all.filter((c) => c.step > step)) await rm(join(dir, "checkpoints", c.name), { recursive: true, force: true })
    return all.filter((c) => c.step <= step).at(-1)?.step ?? null
  })

/**
 * Writes `eval.json` atomically (and `eval-step-<k>.json` for the history).
 *
 * @category constructors
 */
export const writeEval = (dir: string, step: number, result: unknown): Effect.Effect<void, RunError> =>
  io(join(dir, "eval.json"), async () => {
    const text = JSON.stringify(result, null, 2) + "\n"
    await writeFile(join(dir, `eval-step-${pad(step)}.json`), text)
    await Checkpoint.writeSynced(join(dir, "eval.json.tmp"), text)
    await rename(join(dir, "eval.json.tmp"), join(dir, "eval.json"))
  })

/**
 * One logged rollout.
 *
 * @category models
 */
export interface Sample {
  readonly id: string
  readonly problem: string
  readonly answer: string
  readonly response: string
  readonly reward: number
  readonly advantage: number
  readonly outcome: string
  readonly image: Images.ImageShape & { readonly data: Float32Array }
  readonly masked: Float32Array
}

/**
 * Writes samples: `samples/step-<k>/<i>.png` (original | masked) and `samples.jsonl`.
 *
 * @category constructors
 */
export const writeSamples = (dir: string, step: number, samples: ReadonlyArray<Sample>): Effect.Effect<void, RunError> => {
  const out = join(dir, "samples", `step-${pad(step)}`)
  return io(out, async () => {
    await mkdir(out, { recursive: true })
    const lines: Array<string> = []
    for (const [i, s] of samples.entries()) {
      const png = `${i}.png`
      await writeFile(join(out, png), Images.encodePng([s.image, { ...s.image, data: s.masked }]))
      const { image: _i, masked: _m, ...rest } = s
      lines.push(JSON.stringify({ ...rest, png }))
    }
    await writeFile(join(out, "samples.jsonl"), lines.join("\n") + "\n")
  })
}

const pad = (step: number) => String(step).padStart(6, "0")


/**
 * What a checkpoint holds beyond the model: the trainer's state (JSON).
 *
 * @category models
 */
export interface SaveInput {
  readonly policy: Policy.Policy
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW
  readonly tokenizer: Tokenizer.Tokenizer
  readonly state: unknown
}

/**
 * Saves `checkpoints/step-<k>` atomically (temporary folder, fsync, rename) and keeps the newest `keep`.
 *
 * @category constructors
 */
export const saveCheckpoint = (dir: string, step: number, input: SaveInput, keep: number, label = ""): Effect.Effect<string, RunError> => {
  const root = join(dir, "checkpoints")
  const name = `step-${pad(step)}${label}`
  const final = join(root, name)
  return io(final, async () => {
    const tmp = join(root, `.tmp-${name}-${process.pid}`)
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { recursive: true })
    await Checkpoint.save(join(tmp, "actor"), { policy: input.policy, tokenizer: input.tokenizer, optimizer: input.optimizer, extra: input.state })
    if (input.reference !== null) await Checkpoint.save(join(tmp, "reference"), { policy: input.reference })
    await Checkpoint.syncDir(tmp)
    await rm(final, { recursive: true, force: true })
    await rename(tmp, final)
    await Checkpoint.syncDir(root)
    const all = (await readdir(root)).filter((f) => /^step-\d+$/.test(f)).sort()
    for (const old of all.slice(0, Math.max(0, all.length - keep))) await rm(join(root, old), { recursive: true, force: true })
    return final
  })
}

/**
 * The newest complete checkpoint folder of a run, or null.
 *
 * @category constructors
 */
export const latestCheckpoint = (dir: string): Effect.Effect<string | null, RunError> =>
  io(dir, async () => {
    const root = join(dir, "checkpoints")
    const all = (await readdir(root).catch(() => [] as Array<string>)).filter((f) => /^step-\d+$/.test(f)).sort()
    return all.length ? join(root, all[all.length - 1]!) : null
  })

/**
 * The model checkpoint folder a path names: a model checkpoint itself, a trainer checkpoint (its
 * `actor/`), or a run folder (its newest checkpoint's `actor/`).
 *
 * @category constructors
 */
export const resolveModelCheckpoint = (path: string): Effect.Effect<string, RunError> =>
  Effect.gen(function*() {
    const exists = (p: string) => io(p, () => stat(p).then(() => true, () => false))
    if (yield* exists(join(path, "config.json"))) return path
    if (yield* exists(join(path, "actor", "config.json"))) return join(path, "actor")
    const latest = yield* latestCheckpoint(path)
    if (latest !== null) return join(latest, "actor")
    return yield* new RunError({ path, reason: "not a checkpoint, a trainer checkpoint or a run folder with checkpoints" })
  })

/**
 * A loaded trainer checkpoint.
 *
 * @category models
 */
export interface Loaded {
  readonly policy: Policy.Policy
  readonly optimizer: Optimizer.AdamW
  readonly tokenizer: Tokenizer.Tokenizer
  readonly referenceWeights: Record<string, Float32Array> | null
  readonly state: unknown
}

/**
 * Loads a trainer checkpoint folder (`actor/`, optional `reference/`).
 *
 * @category constructors
 */
export const loadCheckpoint = (folder: string, optim: Optimizer.AdamWConfig): Effect.Effect<Loaded, RunError> =>
  io(folder, async () => {
    const actor = await Checkpoint.restore(join(folder, "actor"), optim)
    if (actor.tokenizer === null || actor.adamW === null) throw new Error("the actor checkpoint lacks its tokenizer or optimizer")
    const hasRef = await stat(join(folder, "reference")).then(() => true, () => false)
    const ref = hasRef ? await Checkpoint.load(join(folder, "reference")) : null
    return { policy: actor.policy, optimizer: actor.adamW, tokenizer: actor.tokenizer, referenceWeights: ref?.weights ?? null, state: actor.extra }
  })

/**
 * Console output of a run: `bar` redraws one line with ETA (for a terminal), `lines` prints a line
 * per step, `quiet` nothing.
 *
 * @category constructors
 */
export const makeProgress = (mode: "auto" | "bar" | "lines" | "quiet", total: number, label: string) => {
  const resolved = mode === "auto" ? (process.stdout.isTTY ? "bar" : "lines") : mode
  const started = performance.now()
  let firstStep: number | null = null
  const fmt = (s: number) => (s >= 3600 ? `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m` : s >= 60 ? `${Math.floor(s / 60)}m${Math.round(s % 60)}s` : `${s.toFixed(1)}s`)
  return {
    update: (step: number, summary: string) => {
      if (resolved === "quiet") return
      firstStep ??= step - 1
      const done = step - firstStep
      const elapsed = (performance.now() - started) / 1000
      const eta = done > 0 ? (elapsed / done) * (total - step) : 0
      if (resolved === "bar") {
        const width = 24
        const filled = Math.round((step / total) * width)
        process.stdout.write(`\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${step}/${total} ETA ${fmt(eta)} ${summary}\x1b[K`)
      } else {
        process.stdout.write(`${label} step ${step}/${total} (${fmt(elapsed)}, ETA ${fmt(eta)}) ${summary}\n`)
      }
    },
    log: (line: string) => {
      if (resolved === "quiet") return
      process.stdout.write(resolved === "bar" ? `\r\x1b[K${line}\n` : `${line}\n`)
    },
    done: () => {
      if (resolved === "bar") process.stdout.write("\n")
    }
  }
}
