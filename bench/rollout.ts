/**
 * npm run bench -- rollout [small|medium ...] [--threads 1|2] [--steps N] [--warmup N]
 *
 * papo-step's rollout alone (bench/papo-step.ts's header: 80 sequences of [32 image][8 prompt] tokens, 16 new
 * tokens each at temperature 1, no early stop: one prefill over the 80 sequences, then 15 KV-cache decode steps),
 * without the log-prob passes and the update around it: more rollouts per minute than papo-step, for
 * before/after comparisons of the sampling path. `--steps` timed rollouts (default 20) after `--warmup` (3).
 * Under the native kernels `--threads 2` is two threads inside each native call; on plain wasm the rollout runs
 * on the main thread alone (papo-step adds a worker replica there).
 *
 * Prints one JSON line per config: `{config, threads, backend, rollout_ms, rollout_ms_min, rollout_cpu_ms,
 * rollout_tok_s}`: the median and fastest wall-clock rollout, the median CPU milliseconds of this process (all its
 * threads) per rollout, and tokens per second at the median (80·16 / rollout s).
 */
import * as tf from "@tensorflow/tfjs"
import { describe, initBackend } from "@papo/backend"
import { Native } from "@papo/kernels"
import { Sampling } from "@papo/model"
import { Xoshiro128 } from "@papo/random"
import { dispose, models, N, TP, TR } from "./lib/workload.js"
import { flag, names } from "./lib/args.js"
import { median } from "./lib/stats.js"

const configsToRun = names.length > 0 ? names : (["small", "medium"] as const)
const timed = flag("--steps", 20), warmup = flag("--warmup", 3), threads = flag("--threads", 2)
if (threads !== 1 && threads !== 2) throw new Error(`--threads must be 1 or 2, got ${threads}`)

const choice = await initBackend("wasm")
const backend = describe(threads === 1 && choice.native?.available ? { ...choice, native: Native.configure({ threads: 1 }) } : choice)
console.error(`backend: ${backend}`)

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

for (const name of configsToRun) {
  const workload = models(name)
  const rng = new Xoshiro128(1)
  const images = tf.tensor4d(new Float32Array(N * 28 * 56).map(() => rng.random()), [N, 28, 56, 1])
  const promptIds = tf.tensor2d(new Int32Array(N * TP).map(() => rng.nextUint32() % workload.config.vocabSize), [N, TP], "int32")
  const wall: Array<number> = [], cpu: Array<number> = []
  for (let i = 0; i < warmup + timed; i++) {
    const c0 = cpuMs(), t0 = performance.now()
    const r = Sampling.sample(workload.policy, images, promptIds, { groupSize: 1, maxNewTokens: TR, padId: 0, temperature: 1 }, rng)
    const t1 = performance.now(), c1 = cpuMs()
    tf.dispose([r.responseIds, r.responseMask])
    if (i >= warmup) wall.push(t1 - t0), cpu.push(c1 - c0)
  }
  const ms = median(wall)
  console.log(JSON.stringify({
    config: name, threads, backend, rollout_ms: +ms.toFixed(1), rollout_ms_min: +Math.min(...wall).toFixed(1),
    rollout_cpu_ms: +median(cpu).toFixed(1), rollout_tok_s: Math.round((N * TR) / (ms / 1000))
  }))
  tf.dispose([images, promptIds])
  dispose(workload)
}
