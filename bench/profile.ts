/**
 * npm run bench -- profile [small|medium ...] [--steps N] [--warmup N] [--top N]
 *
 * Where the time of papo-step's rollout, log-prob passes and update goes, per tfjs kernel: every kernel registered
 * for the wasm backend is wrapped in a wall-clock timer (the native ones of @papo/kernels included), and
 * each phase runs `--steps` times (default 6) after `--warmup` (2). Phases, on the papo-step workload
 * (80 sequences of 32 image + 8 prompt + 16 response tokens, random weights, images and responses):
 * - `rollout`: papo-step's sampling of 16 tokens for the 80 sequences (one prefill, 15 KV-cache decode steps);
 * - `logprob`: the no-grad passes of a PAPO-G step: the policy on 160 rows (original and masked images)
 *   and the reference on 80;
 * - `gradients`: the PAPO-G loss's gradient (`Optimizer.gradients`: forward, loss and backward);
 * - `optimizer`: one AdamW update from those gradients (`Optimizer.update`: grad norm, clip, moments).
 *
 * Prints per config and phase one JSON line `{config, phase, step_ms, step_ms_min, kernel_ms, outside_ms}`
 * (medians and minimum over the timed steps; `outside_ms` = step − time inside kernels: the engine, the
 * gradient tape, JavaScript around the kernels, garbage collection), then one line per kernel among the
 * `--top` (default 12) slowest `{config, phase, kernel, ms, calls}` (ms per step, median over steps).
 * The timers add a few µs per kernel call.
 */
import * as tf from "@tensorflow/tfjs"
import { describe, initBackend } from "@papo/backend"
import { PapoLoss } from "@papo/loss"
import { Optimizer, Policy, Sampling } from "@papo/model"
import { Xoshiro128 } from "@papo/random"
import { dispose, models, N, TP, TR } from "./lib/workload.js"
import { flag, names } from "./lib/args.js"
import { median } from "./lib/stats.js"

const configsToRun = names.length > 0 ? names : (["small"] as const)
const timedSteps = flag("--steps", 6), warmup = flag("--warmup", 2), top = flag("--top", 12)

const backend = describe(await initBackend("wasm"))
console.error(`backend: ${backend}`)

// Per-step kernel times: kernel name → [ms, calls] of the step being timed.
let current: Map<string, [number, number]> | null = null
for (const k of tf.getKernelsForBackend("wasm")) {
  const f = k.kernelFunc
  tf.unregisterKernel(k.kernelName, "wasm")
  tf.registerKernel({
    ...k,
    kernelFunc: ((a: Parameters<typeof f>[0]) => {
      if (current === null) return f(a)
      const t0 = performance.now()
      const out = f(a)
      const e = current.get(k.kernelName) ?? [0, 0]
      e[0] += performance.now() - t0
      e[1]++
      current.set(k.kernelName, e)
      return out
    }) as typeof f
  })
}

const round = (x: number): number => +x.toFixed(2)

const phase = (config: string, name: string, run: () => void): void => {
  for (let i = 0; i < warmup; i++) run()
  const steps: Array<{ ms: number; kernels: Map<string, [number, number]> }> = []
  for (let i = 0; i < timedSteps; i++) {
    current = new Map()
    const t0 = performance.now()
    run()
    steps.push({ ms: performance.now() - t0, kernels: current })
    current = null
  }
  const inKernels = steps.map((s) => [...s.kernels.values()].reduce((a, [ms]) => a + ms, 0))
  console.log(JSON.stringify({
    config, phase: name,
    step_ms: round(median(steps.map((s) => s.ms))),
    step_ms_min: round(Math.min(...steps.map((s) => s.ms))),
    kernel_ms: round(median(inKernels)),
    outside_ms: round(median(steps.map((s, i) => s.ms - inKernels[i]!)))
  }))
  const kernels = [...new Set(steps.flatMap((s) => [...s.kernels.keys()]))].map((kernel) => ({
    kernel,
    ms: median(steps.map((s) => s.kernels.get(kernel)?.[0] ?? 0)),
    calls: steps[0]!.kernels.get(kernel)?.[1] ?? 0
  }))
  for (const k of kernels.sort((a, b) => b.ms - a.ms).slice(0, top)) console.log(JSON.stringify({ config, phase: name, kernel: k.kernel, ms: round(k.ms), calls: k.calls }))
}

for (const name of configsToRun) {
  const workload = models(name)
  const { config, policy, ref, opt } = workload
  const rng = new Xoshiro128(1)
  const pixels = (masked: boolean) => new Float32Array(N * 28 * 56).map(() => (masked && rng.random() < 0.6 ? 0 : rng.random()))
  const ids = (n: number) => new Int32Array(N * n).map(() => rng.nextUint32() % config.vocabSize)
  const batch = { images: tf.tensor4d(pixels(false), [N, 28, 56, 1]), promptIds: tf.tensor2d(ids(TP), [N, TP], "int32"), responseIds: tf.tensor2d(ids(TR), [N, TR], "int32") }
  const maskedImages = tf.tensor4d(pixels(true), [N, 28, 56, 1])
  const both = { images: tf.concat([batch.images, maskedImages]), promptIds: tf.concat([batch.promptIds, batch.promptIds]), responseIds: tf.concat([batch.responseIds, batch.responseIds]) }
  const responseMask = tf.ones([N, TR])
  const advantages = tf.tidy(() => tf.mul(tf.tensor2d(new Float32Array(N).map(() => rng.random() - 0.5), [N, 1]), responseMask))
  const [oldLogProbs, maskedLogProbs] = tf.tidy(() => tf.split(Policy.logProbs(policy, both), 2, 0))
  const refLogProbs = Policy.logProbs(ref, batch)
  const loss = () => PapoLoss.papoLoss({ oldLogProbs: oldLogProbs!, maskedLogProbs: maskedLogProbs!, refLogProbs, advantages, responseMask, logProbs: Policy.logProbs(policy, batch) }, PapoLoss.presets["papo-g"]).loss

  phase(name, "rollout", () => {
    const r = Sampling.sample(policy, batch.images, batch.promptIds, { groupSize: 1, maxNewTokens: TR, padId: 0, temperature: 1 }, rng)
    tf.dispose([r.responseIds, r.responseMask])
  })
  phase(name, "logprob", () => {
    const out = [Policy.logProbs(policy, both), Policy.logProbs(ref, batch)]
    out.forEach((t) => t.dataSync())
    tf.dispose(out)
  })
  let grads: Optimizer.Gradients | null = null
  phase(name, "gradients", () => {
    if (grads !== null) tf.dispose(Object.values(grads.grads))
    grads = Optimizer.gradients(policy, loss)
  })
  phase(name, "optimizer", () => {
    if (Optimizer.update(policy, opt, grads!.grads).skipped) throw new Error("update skipped: non-finite gradient")
  })
  tf.dispose([...Object.values(grads!.grads), ...Object.values(batch), ...Object.values(both), maskedImages, responseMask, advantages, oldLogProbs!, maskedLogProbs!, refLogProbs])
  dispose(workload)
}
