/**
 * Data parallelism over worker threads: tfjs's wasm backend runs on one thread in Node, so a second core
 * is used by a worker holding its own replica of the policy (and of the reference and the optimizer).
 *
 * Each call splits its rows between the main thread and the worker, runs both halves at once, and joins the
 * results. A train step ({@link step}) takes the loss by name from a closed table ({@link LossSpec}: `papo`,
 * `sft`) and a mini-batch as micro-batches (gradient accumulation); every micro-batch is split between the
 * threads, each half's loss scaled by its share of the micro-batch's response tokens (so token-mean losses add
 * up exactly), each thread sums its halves on one tape, the gradients are exchanged, and both replicas apply
 * the identical AdamW update (same sums in the same order: the replicas stay bit-identical).
 *
 * A {@link local} team has no worker: every call runs in this thread, as one thread always did, so a caller
 * has one code path for one and two threads.
 *
 * All calls are async (they wait for the worker); the main thread's `policy` stays the source of truth for
 * checkpoints. After changing its weights outside {@link step} (e.g. loading a checkpoint), call
 * {@link sync}. Sampling splits by prompt and draws the worker's part from `rng.fork()`, so its results
 * depend on the thread count (but are reproducible for a given one).
 *
 * Under the native matMul kernels of @papo/kernels (which use both cores inside each kernel on their own),
 * a team sets them to one thread each while it runs, so that the two replicas do not oversubscribe the
 * cores; {@link stop} gives them back their two threads. Native results do not depend on that count.
 *
 * @since 0.1.0
 */
import { Worker } from "node:worker_threads"
import * as tf from "@tensorflow/tfjs"
import { Native, Wasm } from "@papo/kernels"
import * as Optimizer from "./Optimizer.js"
import * as Policy from "./Policy.js"
import type { Xoshiro128 } from "@papo/random"
import * as Sampling from "./Sampling.js"
import { toWire, type Request, type Wire, type WireBatch } from "./internal/protocol.js"
import * as Update from "./internal/update.js"

/**
 * The loss of an update, by name, from a closed table: `papo` (`PapoLoss.papoLoss` with its config and this
 * step's γ, `klPrcpCoef`) or `sft` (token cross-entropy, the mean NLL of the response tokens).
 *
 * @example
 * const spec: LossSpec = { name: "papo", config: PapoLoss.presets["papo-g"], klPrcpCoef: 0.01 }
 * spec.name // => "papo"
 *
 * @category models
 */
export type LossSpec = Update.LossSpec

/**
 * A micro-batch: the policy's batch and the loss inputs of the same rows (`responseMask` `[n, T]`; for `papo`
 * also `oldLogProbs`, `advantages`, and optionally `refLogProbs`, `maskedLogProbs` or `maskedImages`).
 *
 * @example
 * const m: MicroBatch = { batch, inputs: { responseMask } } // an `sft` micro-batch
 *
 * @category models
 */
export type MicroBatch = Update.MicroBatch

/**
 * Frees every tensor of micro-batches: their batches and loss inputs (after {@link step}, which does not take
 * ownership of them).
 *
 * @example
 * disposeMicroBatches(micro) // tf.memory().numTensors back to where it was before they were made
 *
 * @category constructors
 */
export const disposeMicroBatches: (micro: ReadonlyArray<MicroBatch>) => void = Update.disposeMicroBatches

/**
 * A main-thread policy with the threads that run it: this thread alone ({@link local}) or with one worker
 * replica ({@link start}).
 *
 * @category models
 */
export interface Team {
  readonly policy: Policy.Policy
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW | null
  /** Threads in use: 1 ({@link local}) or 2 (the main thread and one worker). */
  readonly threads: number
  /** The worker replica, or null for a {@link local} team. */
  readonly remote: {
    readonly worker: Worker
    readonly call: (req: Request, transfer?: Array<ArrayBuffer>) => Promise<unknown>
  } | null
}

/**
 * A team of this thread alone: every call runs here (the same computations as without a team).
 *
 * @example
 * const team = local(policy, { optimizer: opt })
 * team.threads // => 1
 *
 * @category constructors
 */
export const local = (
  policy: Policy.Policy,
  options: { readonly reference?: Policy.Policy | null; readonly optimizer?: Optimizer.AdamW | null } = {}
): Team => ({ policy, reference: options.reference ?? null, optimizer: options.optimizer ?? null, threads: 1, remote: null })

/** The worker: compiled JS next to this file, or (when running from TypeScript sources, as the tests do) the .ts file through tsx. */
const spawnWorker = (): Worker => {
  if (!import.meta.url.endsWith(".ts")) return new Worker(new URL("./internal/worker.js", import.meta.url))
  const boot = "const { workerData: d } = require('node:worker_threads'); import(d.tsx).then((m) => { m.register(); return import(d.url) })"
  return new Worker(boot, {
    eval: true,
    workerData: { tsx: import.meta.resolve("tsx/esm/api"), url: new URL("./internal/worker.ts", import.meta.url).href }
  })
}

const initMessage = (policy: Policy.Policy, reference: Policy.Policy | null, optimizer: Optimizer.AdamW | null): Request => ({
  kind: "init",
  config: policy.config,
  weights: Policy.getWeights(policy),
  referenceWeights: reference === null ? null : Policy.getWeights(reference),
  optimizer: optimizer === null ? null : { config: optimizer.config, state: Optimizer.getState(optimizer) }
})

/**
 * Starts a worker replica of `policy` (and of `reference` and `optimizer`, if given).
 *
 * @example
 * const team = await start(policy, { reference: ref, optimizer: opt })
 * const r = await sample(team, images, promptIds, { groupSize: 5, maxNewTokens: 16, padId: 0 }, rng)
 * await stop(team)
 *
 * @category constructors
 */
export const start = async (
  policy: Policy.Policy,
  options: { readonly reference?: Policy.Policy; readonly optimizer?: Optimizer.AdamW } = {}
): Promise<Team> => {
  const worker = spawnWorker()
  const waiting = new Map<number, { resolve: (x: unknown) => void; reject: (e: Error) => void }>()
  let nextId = 0
  let ready!: () => void
  let failed!: (e: Error) => void
  const isReady = new Promise<void>((res, rej) => {
    ready = res
    failed = rej
  })
  worker.on("message", (msg: { id: number; ok: boolean; result?: unknown; error?: string }) => {
    if (msg.id === -1) return ready()
    const w = waiting.get(msg.id)
    waiting.delete(msg.id)
    if (msg.ok) w?.resolve(msg.result)
    else w?.reject(new Error(`Parallel worker: ${msg.error}`))
  })
  worker.on("error", (e) => {
    failed(e)
    for (const w of waiting.values()) w.reject(e)
    waiting.clear()
  })
  const call = (req: Request, transfer: Array<ArrayBuffer> = []): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      worker.postMessage({ id, req }, transfer)
    })
  await isReady
  const reference = options.reference ?? null
  const optimizer = options.optimizer ?? null
  await call(initMessage(policy, reference, optimizer))
  if (Wasm.isInstalled()) Native.configure({ threads: 1 })
  return { policy, reference, optimizer, threads: 2, remote: { worker, call } }
}

/**
 * Whether a worker replica is worth starting on this thread's backend: not under the native matMul kernels
 * of @papo/kernels, which use both cores inside each kernel (one replica with two-thread kernels took
 * 1763 ms per papo-step `small` against 2210 ms for two replicas, in one session; see the README).
 *
 * @example
 * pays() // => false on wasm with the native kernels, true on plain wasm
 *
 * @category constructors
 */
export const pays = (): boolean => !Wasm.isInstalled() || tf.getBackend() !== "wasm"

/**
 * Copies the main thread's weights (policy, reference) and optimizer state to the worker.
 *
 * @category constructors
 */
export const sync = async (team: Team): Promise<void> => {
  await team.remote?.call(initMessage(team.policy, team.reference, team.optimizer))
}

/**
 * Stops the worker (and gives the native kernels back their two threads).
 *
 * @category constructors
 */
export const stop = async (team: Team): Promise<void> => {
  if (team.remote === null) return
  await team.remote.call({ kind: "stop" })
  await team.remote.worker.terminate()
  if (Wasm.isInstalled()) Native.configure({ threads: 2 })
}

const rowsOf = (t: tf.Tensor, start: number, count: number): tf.Tensor =>
  tf.slice(t, [start, ...t.shape.slice(1).map(() => 0)], [count, ...t.shape.slice(1)])

/** Rows `[0, k)` stay on the main thread, `[k, n)` go to the worker. */
const splitAt = (n: number): number => Math.ceil(n / 2)

const wireRows = (t: tf.Tensor, start: number, count: number) => {
  const part = rowsOf(t, start, count)
  const w = toWire(part)
  part.dispose()
  return w
}

const wireBatch = (b: Policy.Batch, start: number, count: number): WireBatch => ({
  images: wireRows(b.images, start, count),
  promptIds: wireRows(b.promptIds, start, count),
  responseIds: wireRows(b.responseIds, start, count)
})

const withRows = <A>(b: Policy.Batch, count: number, f: (part: Policy.Batch) => A): A => {
  const part = { images: rowsOf(b.images, 0, count), promptIds: rowsOf(b.promptIds, 0, count), responseIds: rowsOf(b.responseIds, 0, count) }
  try {
    return f(part)
  } finally {
    tf.dispose([part.images, part.promptIds, part.responseIds])
  }
}

/**
 * `Sampling.sample` with the prompts split between the threads (see the module doc for the random streams).
 *
 * @category math
 */
export const sample = async (
  team: Team,
  images: tf.Tensor,
  promptIds: tf.Tensor,
  options: Sampling.SampleOptions,
  rng: Xoshiro128
): Promise<Sampling.Rollout> => {
  const b = images.shape[0]!
  const k = splitAt(b)
  if (team.remote === null || k === b) return Sampling.sample(team.policy, images, promptIds, options, rng)
  const workerRng = rng.fork()
  const remote = team.remote.call({
    kind: "sample",
    images: wireRows(images, k, b - k),
    promptIds: wireRows(promptIds, k, b - k),
    options,
    rng: workerRng.state()
  }) as Promise<{ ids: Int32Array; lengths: Int32Array; logProbs: Float32Array }>
  const mi = rowsOf(images, 0, k), mp = rowsOf(promptIds, 0, k)
  const local = Sampling.sample(team.policy, mi, mp, options, rng)
  tf.dispose([mi, mp, local.responseIds, local.responseMask])
  const other = await remote
  const t = options.maxNewTokens, n = b * options.groupSize
  const ids = new Int32Array(n * t), lengths = new Int32Array(n), logProbs = new Float32Array(n * t)
  ids.set(local.ids)
  ids.set(other.ids, local.ids.length)
  lengths.set(local.lengths)
  lengths.set(other.lengths, local.lengths.length)
  logProbs.set(local.logProbs)
  logProbs.set(other.logProbs, local.logProbs.length)
  const mask = new Float32Array(n * t)
  for (let r = 0; r < n; r++) mask.fill(1, r * t, r * t + lengths[r]!)
  return { responseIds: tf.tensor2d(ids, [n, t], "int32"), responseMask: tf.tensor2d(mask, [n, t]), lengths, ids, logProbs }
}

/**
 * `Policy.logProbs` of the policy or the reference with the rows split between the threads: `[N, Tr]`.
 *
 * @category math
 */
export const logProbs = async (team: Team, model: "policy" | "reference", batch: Policy.Batch, temperature = 1): Promise<tf.Tensor2D> => {
  const p = model === "policy" ? team.policy : team.reference
  if (p === null) throw new Error("Parallel.logProbs: the team has no reference model")
  const n = batch.images.shape[0]!
  const k = splitAt(n)
  if (team.remote === null || k === n) return Policy.logProbs(p, batch, temperature)
  const remote = team.remote.call({ kind: "logProbs", model, batch: wireBatch(batch, k, n - k), temperature }) as Promise<Float32Array>
  const local = withRows(batch, k, (part) => Policy.logProbs(p, part, temperature))
  const other = await remote
  const tr = batch.responseIds.shape[1]!
  const joined = tf.tidy(() => tf.concat([local, tf.tensor2d(other, [n - k, tr])], 0)) as tf.Tensor2D
  local.dispose()
  return joined
}

const rowTokens = (mask: tf.Tensor): Array<number> => {
  const sums = tf.tidy(() => tf.sum(tf.reshape(mask, [mask.shape[0]!, -1]), 1))
  const out = Array.from(sums.dataSync())
  sums.dispose()
  return out
}

/** Rows [start, start + count) of every tensor of a micro-batch, through `f` (slice, or slice and serialize). */
const mapRows = <A>(m: MicroBatch, f: (t: tf.Tensor) => A) => ({
  batch: { images: f(m.batch.images), promptIds: f(m.batch.promptIds), responseIds: f(m.batch.responseIds) },
  inputs: Object.fromEntries(Object.entries(m.inputs).map(([k, t]) => [k, t == null ? null : f(t)]))
})

/**
 * One optimizer step on a mini-batch given as micro-batches, with the loss `loss` from the closed table
 * ({@link LossSpec}): the gradient of (1/M)·Σ_i loss(micro-batch i) (M micro-batches: gradient
 * accumulation), clipped and applied by AdamW. With a worker, every micro-batch is split between the threads,
 * each half's loss weighted by its share of the micro-batch's response tokens (exact for token-mean losses;
 * the halves are weighted the same way under the other aggregation modes). `loss` of the result is the
 * accumulated loss; `metrics` are the micro-batches' mean metrics (token-share-weighted over the halves).
 * The caller keeps and disposes the micro-batches' tensors.
 *
 * @example
 * const r = await step(team, [{ batch, inputs: { responseMask } }], { name: "sft" })
 * r.metrics["sft/loss"] // => the mean NLL of the response tokens, before the update
 *
 * @category math
 */
export const step = async (
  team: Team,
  micro: ReadonlyArray<MicroBatch>,
  loss: LossSpec,
  temperature = 1
): Promise<Optimizer.StepResult> => {
  const opt = team.optimizer
  if (opt === null) throw new Error("Parallel.step: the team was started without an optimizer")
  const count = micro.length
  if (team.remote === null) {
    const g = Update.gradientsOf(team.policy, micro.map((m) => ({ ...m, share: 1 })), loss, count, temperature)
    try {
      return { loss: g.loss, metrics: g.metrics, ...Optimizer.update(team.policy, opt, g.grads) }
    } finally {
      tf.dispose(Object.values(g.grads))
    }
  }
  // Rows [0, k) of each micro-batch stay here, [k, n) go to the worker; shares by response tokens.
  const splits = micro.map((m) => {
    const n = m.batch.images.shape[0]!
    const k = splitAt(n)
    const tokens = rowTokens(m.inputs.responseMask)
    const total = tokens.reduce((a, b) => a + b, 0)
    const share = total > 0 ? tokens.slice(0, k).reduce((a, b) => a + b, 0) / total : k / n
    return { m, n, k, share }
  })
  const remoteParts = splits.filter((s) => s.k < s.n).map(({ m, n, k, share }) => ({ ...mapRows(m, (t): Wire => wireRows(t, k, n - k)), share: 1 - share }))
  const remote = team.remote.call({ kind: "gradients", parts: remoteParts, loss, count, temperature }) as Promise<
    { loss: number; metrics: Record<string, number>; grads: Record<string, Float32Array> }
  >
  const mine: Array<Update.Part> = splits.map(({ m, k, share }) => ({ ...(mapRows(m, (t) => rowsOf(t, 0, k)) as unknown as MicroBatch), share }))
  const local = (() => {
    try {
      return Update.gradientsOf(team.policy, mine, loss, count, temperature)
    } finally {
      Update.disposeMicroBatches(mine)
    }
  })()
  const other = await remote
  const localArrays = Object.fromEntries(Object.entries(local.grads).map(([name, t]) => [name, t.dataSync() as Float32Array]))
  const remoteUpdate = team.remote.call({ kind: "update", grads: localArrays })
  const sum = tf.tidy(() => Object.fromEntries(Object.entries(local.grads).map(([name, t]) => [name, tf.add(t, tf.tensor(other.grads[name]!, t.shape))])))
  const r = Optimizer.update(team.policy, opt, sum)
  tf.dispose([...Object.values(sum), ...Object.values(local.grads)])
  await remoteUpdate
  const metrics: Record<string, number> = {}
  for (const key of Object.keys(local.metrics)) metrics[key] = local.metrics[key]! + (other.metrics[key] ?? 0)
  return { loss: local.loss + other.loss, metrics, ...r }
}

/**
 * The worker replica's weights (to check that the replicas agree).
 *
 * @category models
 */
export const workerWeights = async (team: Team): Promise<Record<string, Float32Array>> => {
  if (team.remote === null) throw new Error("Parallel.workerWeights: a local team has no worker")
  return (await team.remote.call({ kind: "weights" })) as Record<string, Float32Array>
}
