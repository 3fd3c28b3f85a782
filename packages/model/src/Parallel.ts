/**
 * Data parallelism over worker threads: tfjs's wasm backend runs on one thread in Node, so a second core
 * is used by a worker holding its own replica of the policy (and of the reference and the optimizer).
 *
 * Each call splits its rows between the main thread and the worker, runs both halves at once, and joins the
 * results. A train step computes each half's gradient (each half's loss scaled by its share of the response
 * tokens, so token-mean losses add up exactly), exchanges them, and applies the identical AdamW update on
 * both replicas (same sums in the same order: the replicas stay bit-identical).
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
import { PapoLoss } from "@papo/loss"
import * as Optimizer from "./Optimizer.js"
import * as Policy from "./Policy.js"
import type { Xoshiro128 } from "@papo/random"
import * as Sampling from "./Sampling.js"
import { toWire, type Request, type WireBatch } from "./internal/protocol.js"

/**
 * A main-thread policy with one worker replica.
 *
 * @category models
 */
export interface Team {
  readonly policy: Policy.Policy
  readonly reference: Policy.Policy | null
  readonly optimizer: Optimizer.AdamW | null
  /** Threads in use (2: the main thread and one worker). */
  readonly threads: number
  readonly worker: Worker
  readonly call: (req: Request, transfer?: Array<ArrayBuffer>) => Promise<unknown>
}

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
  return { policy, reference, optimizer, threads: 2, worker, call }
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
  await team.call(initMessage(team.policy, team.reference, team.optimizer))
}

/**
 * Stops the worker (and gives the native kernels back their two threads).
 *
 * @category constructors
 */
export const stop = async (team: Team): Promise<void> => {
  await team.call({ kind: "stop" })
  await team.worker.terminate()
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
  if (k === b) return Sampling.sample(team.policy, images, promptIds, options, rng)
  const workerRng = rng.fork()
  const remote = team.call({
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
  if (k === n) return Policy.logProbs(p, batch, temperature)
  const remote = team.call({ kind: "logProbs", model, batch: wireBatch(batch, k, n - k), temperature }) as Promise<Float32Array>
  const local = withRows(batch, k, (part) => Policy.logProbs(p, part, temperature))
  const other = await remote
  const tr = batch.responseIds.shape[1]!
  const joined = tf.tidy(() => tf.concat([local, tf.tensor2d(other, [n - k, tr])], 0)) as tf.Tensor2D
  local.dispose()
  return joined
}

/**
 * The inputs of `PapoLoss.papoLoss` other than the policy's own log-probs, for the whole batch (`[N, Tr]`).
 *
 * @category models
 */
export interface LossInputs {
  readonly oldLogProbs: tf.Tensor
  readonly advantages: tf.Tensor
  readonly responseMask: tf.Tensor
  readonly refLogProbs?: tf.Tensor | null
  readonly maskedLogProbs?: tf.Tensor | null
}

/**
 * One data-parallel train step of `PapoLoss.papoLoss(…, config)` over the batch: both threads compute their
 * half's gradient, the sums are exchanged, and both apply the same AdamW update. The loss of each half is
 * scaled by its share of the response tokens (exact for the token-mean aggregation; with other modes the
 * halves are weighted the same way). Metrics are the token-share-weighted averages of the halves'.
 *
 * @category math
 */
export const step = async (
  team: Team,
  batch: Policy.Batch,
  inputs: LossInputs,
  config: PapoLoss.LossConfig,
  temperature = 1
): Promise<Optimizer.StepResult> => {
  const opt = team.optimizer
  if (opt === null) throw new Error("Parallel.step: the team was started without an optimizer")
  const n = batch.images.shape[0]!
  const k = splitAt(n)
  const maskSums = tf.tidy(() => tf.sum(tf.reshape(inputs.responseMask, [n, -1]), 1))
  const rowTokens = Array.from(maskSums.dataSync())
  maskSums.dispose()
  const total = rowTokens.reduce((a, b) => a + b, 0)
  const mainTokens = rowTokens.slice(0, k).reduce((a, b) => a + b, 0)
  const shareMain = total > 0 ? mainTokens / total : k / n
  const shareWorker = 1 - shareMain
  const remote = team.call({
    kind: "gradients",
    batch: wireBatch(batch, k, n - k),
    loss: {
      oldLogProbs: wireRows(inputs.oldLogProbs, k, n - k),
      advantages: wireRows(inputs.advantages, k, n - k),
      responseMask: wireRows(inputs.responseMask, k, n - k),
      refLogProbs: inputs.refLogProbs == null ? null : wireRows(inputs.refLogProbs, k, n - k),
      maskedLogProbs: inputs.maskedLogProbs == null ? null : wireRows(inputs.maskedLogProbs, k, n - k),
      config,
      share: shareWorker,
      temperature
    }
  }) as Promise<{ loss: number; metrics: Record<string, number>; grads: Record<string, Float32Array> }>
  const part = (t: tf.Tensor | null | undefined): tf.Tensor | null => (t == null ? null : rowsOf(t, 0, k))
  const mine = { oldLogProbs: part(inputs.oldLogProbs)!, advantages: part(inputs.advantages)!, responseMask: part(inputs.responseMask)!, refLogProbs: part(inputs.refLogProbs), maskedLogProbs: part(inputs.maskedLogProbs) }
  const local = withRows(batch, k, (b) =>
    Optimizer.gradients(team.policy, () => {
      const out = PapoLoss.papoLoss({ ...mine, logProbs: Policy.logProbs(team.policy, b, temperature) }, config)
      return { loss: tf.mul(out.loss, shareMain) as tf.Scalar, metrics: out.metrics }
    })
  )
  tf.dispose(Object.values(mine).filter((t): t is tf.Tensor => t !== null))
  const other = await remote
  const localArrays = Object.fromEntries(Object.entries(local.grads).map(([name, t]) => [name, t.dataSync() as Float32Array]))
  const remoteUpdate = team.call({ kind: "update", grads: localArrays })
  const sum = tf.tidy(() => Object.fromEntries(Object.entries(local.grads).map(([name, t]) => [name, tf.add(t, tf.tensor(other.grads[name]!, t.shape))])))
  const r = Optimizer.update(team.policy, opt, sum)
  tf.dispose([...Object.values(sum), ...Object.values(local.grads)])
  await remoteUpdate
  const metrics: Record<string, number> = {}
  for (const key of Object.keys(local.metrics)) {
    const a = local.metrics[key]!, b = other.metrics[key] ?? a
    metrics[key] = shareMain * a + shareWorker * b
  }
  return { loss: local.loss + other.loss, metrics, ...r }
}

/**
 * The worker replica's weights (to check that the replicas agree).
 *
 * @category models
 */
export const workerWeights = async (team: Team): Promise<Record<string, Float32Array>> =>
  (await team.call({ kind: "weights" })) as Record<string, Float32Array>
