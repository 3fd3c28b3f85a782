/**
 * A pool of worker threads (`node:worker_threads`) that grades in parallel, one verification per worker
 * at a time, with a hard wall-clock limit per verification: a worker that exceeds it is terminated (a
 * synchronous CAS call cannot be interrupted any other way), the verification answers `TimedOut`, and a
 * standby worker, started in advance, takes its place at once (so the next verification does not wait
 * for a worker to start, and its own limit still holds). A worker that crashes answers `Invalid` and is
 * replaced the same way.
 *
 * Idle workers do not keep the process alive; call `close()` when done anyway.
 *
 * @since 0.1.0
 */
import { availableParallelism } from "node:os"
import { Worker } from "node:worker_threads"
import { type GradeOptions, type Outcome, type Score, type ScoreOptions } from "./Grader.js"
import * as MathRuler from "./MathRuler.js"

/**
 * Options of {@link VerifierPool}.
 *
 * @category configuration
 */
export interface PoolOptions {
  /** Number of worker threads (default: the machine's available parallelism). */
  readonly size?: number
  /** Hard wall-clock limit per verification, in milliseconds (default 5000); also the workers' default work budget. */
  readonly timeoutMs?: number
  /**
   * The module each worker runs (default: this package's `Worker.js`). For tests that need a
   * deterministic slow verification: such a module calls `serve` from `internal/Serve.js` with its own
   * handler.
   */
  readonly workerModule?: URL
}

/**
 * Options a pooled job may carry: everything of `ScoreOptions` except a function format rule, which
 * cannot cross a thread boundary.
 *
 * @category configuration
 */
export type PoolScoreOptions = Omit<ScoreOptions, "formatRule"> & { readonly formatRule?: "think-boxed" | "qwen3-vl" | "none" }

/** @internal */
export type PoolRequest =
  | { readonly id: number; readonly kind: "grade"; readonly response: string; readonly gold: string; readonly options: GradeOptions }
  | { readonly id: number; readonly kind: "score"; readonly response: string; readonly gold: string; readonly options: PoolScoreOptions }

/** @internal A chunk of requests a worker answers one by one, posting each result as soon as it has it. */
export interface PoolBatch {
  readonly batch: ReadonlyArray<PoolRequest>
}

/** @internal */
export type PoolResponse =
  | { readonly id: number; readonly kind: "grade"; readonly outcome: Outcome }
  | { readonly id: number; readonly kind: "score"; readonly score: Score }

interface Pending {
  readonly req: PoolRequest
  readonly resolve: (r: PoolResponse) => void
}

interface Slot {
  worker: Worker
  ready: boolean
  /** The chunk sent to this worker; `chunk[0]` is the verification running now (the clock is on it). */
  chunk: Array<Pending>
  timer: ReturnType<typeof setTimeout> | undefined
}

/** At most this many queued verifications go to a worker in one message (amortizes the round trip). */
const MAX_CHUNK = 32

/**
 * A worker running `Worker.js`; when this module runs from its TypeScript source (tests, under tsx), the
 * worker registers tsx's loader first, since loader hooks are not inherited by worker threads.
 */
const startWorker = (module: URL | undefined): Worker => {
  const entry = module?.href ?? new URL(import.meta.url.endsWith(".ts") ? "./Worker.ts" : "./Worker.js", import.meta.url).href
  if (!entry.endsWith(".ts")) return new Worker(new URL(entry))
  const tsx = import.meta.resolve("tsx/esm/api")
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}) })`
  return new Worker(code, { eval: true })
}

const failed = (req: PoolRequest, outcome: Outcome): PoolResponse => {
  if (req.kind === "grade") return { id: req.id, kind: "grade", outcome }
  const w = req.options.formatWeight ?? 0.1
  let format = 0
  try {
    const rule = req.options.formatRule ?? "think-boxed"
    const squeezed = MathRuler.squeezeTags(req.response)
    format = rule === "none" ? 0 : MathRuler.hasThinkBoxedFormat(rule === "qwen3-vl" ? `<think>${squeezed}` : squeezed) ? 1 : 0
  } catch {
    format = 0
  }
  return { id: req.id, kind: "score", score: { overall: w * format, format, accuracy: 0, outcome } }
}

/**
 * The pool. Create with {@link VerifierPool.create}.
 *
 * @category services
 * @example
 * import { VerifierPool } from "@papo/reward"
 * const pool = VerifierPool.create({ timeoutMs: 2000 })
 * const outcomes = await pool.gradeBatch([{ response: "\\boxed{4}", gold: "4" }], { mode: "mathruler" })
 * // outcomes => [{ _tag: "Correct", extracted: "4" }]
 * await pool.close()
 */
export class VerifierPool {
  private readonly slots: Array<Slot> = []
  /** A started, idle worker that takes a killed worker's place at once (a worker takes ~0.1–1 s to start). */
  private standby: Slot
  private readonly queue: Array<Pending> = []
  private nextId = 0
  private closed = false
  private startFailures = 0
  private broken: string | undefined
  /** Verifications that hit the time limit, and workers replaced (timeouts and crashes). */
  readonly counters = { timedOut: 0, replaced: 0 }

  private constructor(readonly size: number, readonly timeoutMs: number, private readonly workerModule: URL | undefined) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
    this.standby = this.spawn()
    this.updateRefs()
  }

  /** Starts `size` workers. */
  static create(options: PoolOptions = {}): VerifierPool {
    const size = Math.max(1, Math.floor(options.size ?? availableParallelism()))
    const timeoutMs = options.timeoutMs ?? 5000
    if (!(timeoutMs > 0)) throw new RangeError(`VerifierPool: timeoutMs must be > 0, got ${timeoutMs}`)
    return new VerifierPool(size, timeoutMs, options.workerModule)
  }

  private spawn(): Slot {
    const worker = startWorker(this.workerModule)
    const slot: Slot = { worker, ready: false, chunk: [], timer: undefined }
    worker.on("message", (res: PoolResponse | { readonly ready: true }) => {
      if ("ready" in res) {
        slot.ready = true
        this.startFailures = 0
        this.dispatch()
        this.notifyReady()
        return
      }
      const job = slot.chunk[0]
      if (job === undefined || job.req.id !== res.id) return
      this.finish(slot, res)
    })
    worker.on("error", (e) => {
      const job = slot.chunk[0]
      if (job !== undefined) this.replace(slot, failed(job.req, { _tag: "Invalid", reason: `worker crashed: ${e.message}` }))
      else if (!slot.ready && !this.closed) {
        // a worker that dies while starting: retry a few times, then give up on the pool
        if (++this.startFailures > 3 * this.size) {
          this.broken = `workers fail to start: ${e.message}`
          for (const p of this.queue.splice(0)) p.resolve(failed(p.req, { _tag: "Invalid", reason: this.broken }))
        } else {
          this.counters.replaced++
          if (slot === this.standby) this.standby = this.spawn()
          const i = this.slots.indexOf(slot)
          if (i >= 0) this.slots[i] = this.spawn()
        }
      }
    })
    return slot
  }

  private readyWaiters: Array<() => void> = []

  private notifyReady() {
    if (this.slots.every((s) => s.ready) && this.standby.ready) for (const w of this.readyWaiters.splice(0)) w()
    this.updateRefs()
  }

  /**
   * Resolves once every worker, the standby included, has started (a replaced worker takes ~0.1–1 s to
   * start, more on a loaded machine; a verification submitted meanwhile waits in the queue, off the clock).
   */
  ready(): Promise<void> {
    return new Promise((resolve) => {
      this.readyWaiters.push(resolve)
      this.notifyReady()
    })
  }

  /** Workers keep the process alive exactly while there is work queued or running. */
  private updateRefs() {
    const busy = this.queue.length > 0 || this.slots.some((s) => s.chunk.length > 0)
    const waiting = this.readyWaiters.length > 0
    for (const s of this.slots) {
      if (busy || (waiting && !s.ready)) s.worker.ref()
      else s.worker.unref()
    }
    if (waiting && !this.standby.ready) this.standby.worker.ref()
    else this.standby.worker.unref()
  }

  private finish(slot: Slot, res: PoolResponse) {
    const job = slot.chunk.shift()!
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    job.resolve(res)
    if (slot.chunk.length > 0) this.startClock(slot)
    else this.dispatch()
  }

  /** Kills the slot's worker; the running verification gets `res`, the rest of its chunk is queued again. */
  private replace(slot: Slot, res: PoolResponse) {
    const [job, ...rest] = slot.chunk
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.chunk = []
    void slot.worker.terminate()
    this.counters.replaced++
    let fresh = this.standby
    if (fresh.ready) this.standby = this.spawn()
    else fresh = this.spawn()
    const i = this.slots.indexOf(slot)
    if (i >= 0) this.slots[i] = fresh
    this.queue.unshift(...rest)
    job?.resolve(res)
    this.dispatch()
  }

  private startClock(slot: Slot) {
    const job = slot.chunk[0]!
    slot.timer = setTimeout(() => {
      if (slot.chunk[0] !== job) return
      this.counters.timedOut++
      this.replace(slot, failed(job.req, { _tag: "TimedOut", limitMs: this.timeoutMs }))
    }, this.timeoutMs)
  }

  private dispatch() {
    if (this.closed) return
    const idle = this.slots.filter((s) => s.chunk.length === 0 && s.ready)
    for (const slot of idle) {
      if (this.queue.length === 0) break
      const n = Math.max(1, Math.min(MAX_CHUNK, Math.ceil(this.queue.length / (2 * this.slots.length))))
      slot.chunk = this.queue.splice(0, n)
      this.startClock(slot)
      const msg: PoolBatch = { batch: slot.chunk.map((p) => p.req) }
      slot.worker.postMessage(msg)
    }
    this.updateRefs()
  }

  private submit(request: PoolRequest): Promise<PoolResponse> {
    if (this.closed || this.broken !== undefined) {
      return Promise.resolve(failed(request, { _tag: "Invalid", reason: this.broken ?? "pool is closed" }))
    }
    // in a worker the work budget defaults to the hard limit (the in-thread default is for the main thread)
    const req = request.options.workMs === undefined ? ({ ...request, options: { ...request.options, workMs: this.timeoutMs } } as PoolRequest) : request
    return new Promise((resolve) => {
      this.queue.push({ req, resolve })
      this.dispatch()
    })
  }

  /** Grades one response off the main thread. Never rejects. */
  async grade(response: string, gold: string, options: GradeOptions): Promise<Outcome> {
    const res = await this.submit({ id: this.nextId++, kind: "grade", response, gold, options })
    return res.kind === "grade" ? res.outcome : res.score.outcome
  }

  /** PAPO's score for one response off the main thread. Never rejects. */
  async score(response: string, gold: string, options: PoolScoreOptions): Promise<Score> {
    const res = await this.submit({ id: this.nextId++, kind: "score", response, gold, options })
    return res.kind === "score" ? res.score : { overall: 0, format: 0, accuracy: 0, outcome: res.outcome }
  }

  /** Grades a batch on every worker; results in input order. */
  gradeBatch(items: ReadonlyArray<{ readonly response: string; readonly gold: string }>, options: GradeOptions): Promise<Array<Outcome>> {
    return Promise.all(items.map((it) => this.grade(it.response, it.gold, options)))
  }

  /** Scores a batch on every worker; results in input order. */
  scoreBatch(items: ReadonlyArray<{ readonly response: string; readonly gold: string }>, options: PoolScoreOptions): Promise<Array<Score>> {
    return Promise.all(items.map((it) => this.score(it.response, it.gold, options)))
  }

  /** Stops every worker; pending verifications answer `Invalid`. */
  async close(): Promise<void> {
    this.closed = true
    for (const w of this.readyWaiters.splice(0)) w()
    for (const p of this.queue.splice(0)) p.resolve(failed(p.req, { _tag: "Invalid", reason: "pool is closed" }))
    for (const slot of this.slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer)
      for (const p of slot.chunk) p.resolve(failed(p.req, { _tag: "Invalid", reason: "pool is closed" }))
      slot.chunk = []
    }
    await Promise.all([...this.slots, this.standby].map((s) => s.worker.terminate()))
  }
}
