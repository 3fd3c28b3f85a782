/**
 * npm run bench -- attention [small|medium ...] [--rows N] [--threads 1|2] [--calls N]
 *
 * The fused causal attention of @papo/kernels (`Wasm.attention`, `attentionKeepingProbs`, `attentionGrad`) on
 * the model's shapes: N sequences (`--rows`, default 160: a log-prob pass over the original and masked
 * images; the update runs 80) of T = 56 positions, `small` 4 heads and `medium` 8 heads of 32. Each pass is
 * called `--calls` times (default 40) after 5 warm-up calls, in turn (forward, forward keeping P, backward),
 * so a busy machine slows all three alike.
 *
 * Prints one JSON line per config and pass `{config, pass, rows, threads, ms_min, ms_median, cpu_ms}`: wall
 * milliseconds per call (fastest and median) and CPU milliseconds per call of this process (all its
 * threads: what a machine shared with other work inflates least), plus `gflops_min` (the multiply-adds the
 * causal mask keeps, 2 FLOPs each: forward 2 products, backward 4, over the fastest call).
 */
import * as tf from "@tensorflow/tfjs"
import { describe, initBackend } from "@papo/backend"
import { Native, Wasm } from "@papo/kernels"
import { flag, names } from "./lib/args.js"
import { median } from "./lib/stats.js"

const rows = flag("--rows", 160), threads = flag("--threads", 2), calls = flag("--calls", 40)
const heads = { small: 4, medium: 8 } as const
const T = 56, HD = 32

const backend = describe(await initBackend("wasm"))
console.error(`backend: ${backend}`)
if (!Wasm.isInstalled()) throw new Error("the fused attention needs the native kernels of @papo/kernels")
Native.configure({ threads: threads === 1 ? 1 : 2 })

const cpuMs = (): number => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

for (const name of names.length > 0 ? names : (["small", "medium"] as const)) {
  const h = heads[name], d = h * HD
  const qkv = tf.randomNormal([rows * T, 3 * d], 0, 1.5, "float32", 1)
  const dy = tf.randomNormal([rows * T, d], 0, 1, "float32", 2)
  const [, probs] = Wasm.attentionKeepingProbs(qkv, T, h)
  const passes: Record<string, () => ReadonlyArray<tf.Tensor>> = {
    forward: () => [Wasm.attention(qkv, T, h)],
    forward_keeping_p: () => Wasm.attentionKeepingProbs(qkv, T, h),
    backward: () => [Wasm.attentionGrad(qkv, probs, dy, T, h)]
  }
  const times: Record<string, { wall: Array<number>; cpu: number }> = {}
  for (let i = -5; i < calls; i++) {
    for (const [pass, run] of Object.entries(passes)) {
      const c0 = cpuMs(), t0 = performance.now()
      const out = run()
      const t1 = performance.now(), c1 = cpuMs()
      tf.dispose(out)
      if (i < 0) continue
      const e = (times[pass] ??= { wall: [], cpu: 0 })
      e.wall.push(t1 - t0)
      e.cpu += c1 - c0
    }
  }
  // Σ over rows i of (i + 1) multiply-adds per column, per product of T × T by hd.
  const kept = rows * h * (T * (T + 1)) / 2 * HD
  for (const [pass, { wall, cpu }] of Object.entries(times)) {
    const min = Math.min(...wall), flops = 2 * kept * (pass === "backward" ? 4 : 2)
    console.log(JSON.stringify({
      config: name, pass, rows, threads,
      ms_min: +min.toFixed(3), ms_median: +median(wall).toFixed(3), cpu_ms: +(cpu / calls).toFixed(3),
      gflops_min: +(flops / min / 1e6).toFixed(1)
    }))
  }
  tf.dispose([qkv, dy, probs])
}
