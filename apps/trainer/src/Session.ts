/**
 * The model side of a run: tokenizer, policy, frozen reference, optimizer, the thread team that runs them
 * (`@papo/model`'s `Parallel`: this thread alone, or with a worker replica), and the plain-array batches they
 * read. {@link acquire} opens a session as a scoped resource (closed when the scope ends, however it ends);
 * {@link open} / {@link close} are the same steps as plain async functions. Tensors are created and disposed
 * inside each function.
 *
 * @since 0.1.0
 */
import { Checkpoint, Config as ModelConfigs, Optimizer, Parallel, Policy, type Sampling, Tokenizer } from "@papo/model"
import * as tf from "@tensorflow/tfjs"
import { Rng, type Xoshiro128 } from "@papo/random"
import { Data, Effect, type Scope } from "effect"
import type { Config } from "./Config.js"
import type { Example } from "./Example.js"
import { builtinLengths } from "./Dataset.js"
import type { ImageShape } from "./Images.js"

/**
 * The model's input image shape for a config: `data.imageHeight` / `imageWidth` / `imageChannels` as
 * `Dataset.load` settles them, the named model's where unset.
 *
 * @category configuration
 */
export const imageShapeOf = (config: Config): ImageShape => {
  const c = ModelConfigs.configs[config.worker.actor.model]
  const d = config.data
  return { height: d.imageHeight ?? c.imageHeight, width: d.imageWidth ?? c.imageWidth, channels: d.imageChannels ?? c.imageChannels }
}

/**
 * The model architecture a config asks for: the named config with the config's overrides, the image
 * shape and text lengths of `data` (as `Dataset.load` settles them), and the vocabulary of `tokenizer`.
 *
 * @category configuration
 */
export const modelConfigOf = (config: Config, tokenizer: Tokenizer.Tokenizer): ModelConfigs.ModelConfig => {
  const a = config.worker.actor
  const named = ModelConfigs.configs[a.model]
  const image = imageShapeOf(config)
  return ModelConfigs.validateConfig({
    ...named,
    imageHeight: image.height,
    imageWidth: image.width,
    imageChannels: image.channels,
    patchSize: a.patchSize ?? named.patchSize,
    dModel: a.dModel ?? named.dModel,
    nLayers: a.nLayers ?? named.nLayers,
    nHeads: a.nHeads ?? named.nHeads,
    dMlp: a.dMlp ?? named.dMlp,
    vocabSize: tokenizer.tokens.length,
    maxPromptLength: config.data.maxPromptLength ?? builtinLengths.maxPromptLength,
    maxResponseLength: config.data.maxResponseLength ?? builtinLengths.maxResponseLength
  })
}

/**
 * The live model state of a run. The caller disposes it with {@link dispose}.
 *
 * @category models
 */
export interface Session {
  readonly tokenizer: Tokenizer.Tokenizer
  readonly modelConfig: ModelConfigs.ModelConfig
  readonly policy: Policy.Policy
  /** The frozen reference (the initial policy), or null without a reference KL. */
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW
  /**
   * Where rollouts, log-probs and updates run: this thread (`Parallel.local`), or split with a worker-thread
   * replica (`trainer.threads = 2` on plain wasm).
   */
  readonly team: Parallel.Team
}

/**
 * A one-thread session from its parts.
 *
 * @example
 * make({ tokenizer, policy, reference: null, optimizer }).team.threads // => 1
 *
 * @category constructors
 */
export const make = (parts: {
  readonly tokenizer: Tokenizer.Tokenizer
  readonly policy: Policy.Policy
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW
}): Session => ({
  ...parts,
  modelConfig: parts.policy.config,
  team: Parallel.local(parts.policy, { reference: parts.reference, optimizer: parts.optimizer })
})

/**
 * Starts the worker replica for `threads = 2` (after the weights are final: loaded or created), unless the
 * native matMul kernels already use both cores (`Parallel.pays()` is false).
 *
 * @example
 * (await withThreads(session, 1)).team.threads // => 1
 *
 * @category constructors
 */
export const withThreads = async (s: Session, threads: number): Promise<Session> =>
  threads < 2 || !Parallel.pays() || s.team.threads > 1
    ? s
    : {
      ...s,
      team: await Parallel.start(s.policy, { ...(s.reference !== null ? { reference: s.reference } : {}), optimizer: s.optimizer })
    }

/**
 * The text a tokenizer must cover for these examples (questions, answers, gold traces).
 *
 * @category constructors
 */
export const textOf = (config: Config, examples: ReadonlyArray<Example>): string =>
  examples.map((e) => e.problem + config.data.promptSuffix + e.answer + (e.trace ?? "")).join("")

/**
 * A fresh session: a new policy seeded by `trainer.seed` with a tokenizer covering `text`, or the
 * weights and tokenizer of the checkpoint `init`. Rejects with a {@link CheckpointIncompatibleError} when that
 * tokenizer lacks characters of `text`, with an `Error` when the checkpoint cannot be read.
 *
 * @category constructors
 */
export const open = async (
  config: Config,
  options: { readonly text: string; readonly init?: string | undefined; readonly optim: Optimizer.AdamWConfig; readonly withReference: boolean }
): Promise<Session> => {
  let tokenizer: Tokenizer.Tokenizer
  let policy: Policy.Policy
  if (options.init) {
    const loaded = await Checkpoint.restore(options.init)
    if (loaded.tokenizer === null) throw new Error(`checkpoint ${options.init} has no tokenizer`)
    tokenizer = loaded.tokenizer
    const missing = [...new Set(options.text)].filter((ch) => Tokenizer.extend(tokenizer, ch) !== tokenizer)
    if (missing.length > 0) {
      Policy.dispose(loaded.policy)
      throw new CheckpointIncompatibleError({ path: options.init, missingChars: missing.join("") })
    }
    policy = loaded.policy
  } else {
    tokenizer = Tokenizer.make(options.text)
    policy = Policy.create(modelConfigOf(config, tokenizer), Rng.deriveSeed(config.trainer.seed, "init"))
  }
  return make({
    tokenizer,
    policy,
    reference: options.withReference ? Policy.reference(policy) : null,
    optimizer: Optimizer.adamW(policy, options.optim)
  })
}

/**
 * Stops the worker replica and frees a session's tensors.
 *
 * @example
 * await close(session) // the policy's variables are disposed
 *
 * @category constructors
 */
export const close = async (s: Session): Promise<void> => {
  await Parallel.stop(s.team)
  Optimizer.dispose(s.optimizer)
  if (s.reference !== null) Policy.dispose(s.reference)
  Policy.dispose(s.policy)
}

/**
 * A session could not be opened: the checkpoint `init` is unreadable, or the worker replica did not start.
 *
 * @category errors
 */
export class SessionError extends Data.TaggedError("SessionError")<{ readonly init: string | null; readonly reason: string }> {
  override get message(): string {
    return this.init === null ? this.reason : `${this.init}: ${this.reason}`
  }
}

/**
 * The checkpoint `path` (`worker.actor.init`, `papo eval --checkpoint`) has a tokenizer without some of the
 * data's characters (`missingChars`): it was trained on other data, and cannot encode this one.
 *
 * @example
 * new CheckpointIncompatibleError({ path: "runs/warm/checkpoints/step-000300/actor", missingChars: "xyz" }).message
 * // => 'checkpoint runs/warm/checkpoints/step-000300/actor: its tokenizer lacks the data\'s characters "xyz" (a checkpoint trained on other data; start from one trained on this data, or from scratch)'
 *
 * @category errors
 */
export class CheckpointIncompatibleError extends Data.TaggedError("CheckpointIncompatibleError")<{
  readonly path: string
  readonly missingChars: string
}> {
  override get message(): string {
    return `checkpoint ${this.path}: its tokenizer lacks the data's characters ${JSON.stringify(this.missingChars)} (a checkpoint trained on other data; start from one trained on this data, or from scratch)`
  }
}

/**
 * A session `made` (opened, or restored from a trainer checkpoint) with its worker replica for `threads`
 * ({@link withThreads}), as a scoped resource: {@link close} runs when the scope closes (end, failure or
 * interruption), and at once when the replica does not start.
 *
 * @example
 * const session = yield* acquireFrom(Effect.succeed(make(parts)), 1, null) // closed with the scope
 *
 * @category layers
 */
export const acquireFrom = <E>(made: Effect.Effect<Session, E>, threads: number, init: string | null): Effect.Effect<Session, E | SessionError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.flatMap(made, (s) =>
      Effect.tryPromise({
        try: () => withThreads(s, threads),
        catch: (e) => new SessionError({ init, reason: `the worker replica did not start: ${e instanceof Error ? e.message : String(e)}` })
      }).pipe(Effect.tapError(() => Effect.promise(() => close(s))))),
    // Closing frees tensors and stops a worker: it fails only on a bug.
    (s) => Effect.promise(() => close(s))
  )

/**
 * {@link open} then {@link withThreads} as a scoped resource ({@link acquireFrom}).
 *
 * @example
 * const result = yield* Effect.scoped(Effect.flatMap(acquire(config, { text, optim, withReference: false }, 1), (s) => evaluate(s, …)))
 *
 * @category layers
 */
export const acquire = (
  config: Config,
  options: Parameters<typeof open>[1],
  threads: number
): Effect.Effect<Session, SessionError | CheckpointIncompatibleError, Scope.Scope> =>
  acquireFrom(
    Effect.tryPromise({
      try: () => open(config, options),
      catch: (e) => e instanceof CheckpointIncompatibleError ? e : new SessionError({ init: options.init ?? null, reason: e instanceof Error ? e.message : String(e) })
    }),
    threads,
    options.init ?? null
  )

/**
 * Rows of a batch as plain arrays: images `[N, H, W, C]`, left-padded prompts `[N, Tp]`, responses
 * `[N, Tr]` and their mask.
 *
 * @category models
 */
export interface Rows {
  readonly n: number
  readonly images: Float32Array
  readonly promptIds: Int32Array
  readonly promptLength: number
  readonly responseIds: Int32Array
  readonly responseMask: Float32Array
  readonly responseLength: number
}

/**
 * The prompt text of an example.
 *
 * @category constructors
 */
export const promptOf = (config: Config, e: Example): string => e.problem + config.data.promptSuffix

/**
 * Encodes prompts (left-padded). Throws, naming the example, when one is too long: a bug, since
 * `Dataset.load` checks every prompt against `data.maxPromptLength` (a `PromptTooLongError`).
 *
 * @category constructors
 */
export const encodePrompts = (
  session: Session,
  config: Config,
  examples: ReadonlyArray<Example>
): { readonly ids: Int32Array; readonly length: number } => {
  const texts = examples.map((e) => promptOf(config, e))
  const max = session.modelConfig.maxPromptLength
  texts.forEach((t, i) => {
    const len = Tokenizer.encode(session.tokenizer, t).length
    if (len > max) {
      throw new Error(`prompt of ${examples[i]!.id} has ${len} tokens, more than data.maxPromptLength = ${max}: ${JSON.stringify(t)}`)
    }
  })
  return Tokenizer.encodeBatch(session.tokenizer, texts)
}

/**
 * Stacks images into one `[N, H, W, C]` array, repeating each `repeat` times (G rollouts per prompt).
 *
 * @category constructors
 */
export const stackImages = (images: ReadonlyArray<Float32Array>, repeat = 1): Float32Array => {
  const size = images[0]?.length ?? 0
  const out = new Float32Array(images.length * repeat * size)
  images.forEach((img, i) => {
    for (let r = 0; r < repeat; r++) out.set(img, (i * repeat + r) * size)
  })
  return out
}

/**
 * Repeats each row of a row-major `[N, width]` array `repeat` times.
 *
 * @category constructors
 */
export const repeatRows = <A extends Int32Array | Float32Array>(a: A, width: number, repeat: number): A => {
  const n = a.length / width
  const out = new (a.constructor as new (n: number) => A)(n * repeat * width)
  for (let i = 0; i < n; i++) for (let r = 0; r < repeat; r++) out.set(a.subarray(i * width, (i + 1) * width), (i * repeat + r) * width)
  return out
}

/**
 * Rows `[start, end)` of a row-major array of row width `width`.
 *
 * @category constructors
 */
export const sliceRows = <A extends Int32Array | Float32Array>(a: A, width: number, start: number, end: number): A =>
  a.subarray(start * width, end * width) as A

/**
 * Rows `[start, end)` of a batch (the same images array: slice it with the rows).
 *
 * @example
 * rowsBetween(rows, 0, 2).n // => 2
 *
 * @category constructors
 */
export const rowsBetween = (rows: Rows, start: number, end: number): Rows => ({
  ...rows,
  n: end - start,
  promptIds: sliceRows(rows.promptIds, rows.promptLength, start, end),
  responseIds: sliceRows(rows.responseIds, rows.responseLength, start, end),
  responseMask: sliceRows(rows.responseMask, rows.responseLength, start, end)
})

/**
 * Picks rows of a row-major array.
 *
 * @category constructors
 */
export const takeRows = <A extends Int32Array | Float32Array>(a: A, width: number, rows: ReadonlyArray<number>): A => {
  const out = new (a.constructor as new (n: number) => A)(rows.length * width)
  rows.forEach((r, i) => out.set(a.subarray(r * width, (r + 1) * width), i * width))
  return out
}

/**
 * The tensors of `Policy.Batch` for rows of `rows` (created in the caller's tidy scope).
 *
 * @category constructors
 */
export const batchTensors = (session: Session, rows: Rows, images: Float32Array = rows.images): Policy.Batch => {
  const c = session.modelConfig
  return {
    images: tf.tensor4d(images, [rows.n, c.imageHeight, c.imageWidth, c.imageChannels]),
    promptIds: tf.tensor2d(rows.promptIds, [rows.n, rows.promptLength], "int32"),
    responseIds: tf.tensor2d(rows.responseIds, [rows.n, rows.responseLength], "int32")
  }
}

/**
 * Per-token log-probs `[N, Tr]` of the policy or the reference (no gradient), computed `microBatch`
 * rows at a time (split between the threads of the session's team), as a plain array. `images` replaces the rows'
 * images (the masked pass).
 *
 * @category math
 */
export const logProbsOf = async (
  session: Session,
  model: "policy" | "reference",
  rows: Rows,
  options: { readonly temperature: number; readonly microBatch: number; readonly images?: Float32Array }
): Promise<Float32Array> => {
  if (model === "reference" && session.reference === null) throw new Error("logProbsOf: the session has no reference model")
  const images = options.images ?? rows.images
  const imageSize = images.length / rows.n
  const out = new Float32Array(rows.n * rows.responseLength)
  for (let start = 0; start < rows.n; start += options.microBatch) {
    const end = Math.min(rows.n, start + options.microBatch)
    const batch = batchTensors(session, rowsBetween(rows, start, end), images.subarray(start * imageSize, end * imageSize))
    const lp = await Parallel.logProbs(session.team, model, batch, options.temperature)
    tf.dispose([batch.images, batch.promptIds, batch.responseIds])
    out.set(lp.dataSync(), start * rows.responseLength)
    lp.dispose()
  }
  return out
}

/**
 * Samples `options.groupSize` responses for each of `b` prompts (images `[b, H, W, C]`, left-padded
 * prompt ids `[b, Tp]`), on the threads of the session's team. Returns the ids, lengths and response mask as arrays.
 *
 * @category math
 */
export const sample = async (
  session: Session,
  images: Float32Array,
  prompts: { readonly ids: Int32Array; readonly length: number },
  options: Sampling.SampleOptions,
  rng: Xoshiro128
): Promise<{ readonly ids: Int32Array; readonly lengths: Int32Array; readonly responseMask: Float32Array }> => {
  const c = session.modelConfig
  const b = prompts.ids.length / prompts.length
  const imageTensor = tf.tensor4d(images, [b, c.imageHeight, c.imageWidth, c.imageChannels])
  const promptIds = tf.tensor2d(prompts.ids, [b, prompts.length], "int32")
  const r = await Parallel.sample(session.team, imageTensor, promptIds, options, rng)
  const responseMask = r.responseMask.dataSync() as Float32Array
  tf.dispose([imageTensor, promptIds, r.responseIds, r.responseMask])
  return { ids: r.ids, lengths: r.lengths, responseMask }
}
