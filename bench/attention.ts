/**
 * npm run bench -- attention [small|medium ...] [--rows N] [--threads 1|2] [--ms N]
 *
 * The policy's full-sequence causal attention (T = 56, heads of 32; small: 4 heads, medium: 8), forward and
 * forward + backward, two ways on the native kernels of @papo/kernels:
 * - `chain`: what @papo/model ran before the fused kernel, from q, k, v `[N·T, d]`: q·(1/√hd), the head
 *   transposes to `[N, H, T, hd]`, batched q·kᵀ, the native causal softmax (its native gradient in a
 *   `tf.customGrad`), batched ·v, the transpose back; the backward is tfjs's autodiff of it;
 * - `fused`: `Wasm.attention` / `Wasm.attentionGrad` on the fused `qkv [N·T, 3d]`.
 * One JSON line per config and pass: the fastest call's wall-clock ms (`chain_ms`, `fused_ms`), CPU ms per call
 * of this process (all threads; what a busy machine does not inflate), and `fused_gflops`: the chain's
 * nominal flops (4·T²·hd per (sequence, head) forward, 8·T²·hd more backward, the causal half included) per
 * second of the fused kernel.
 */
import * as tf from "@tensorflow/tfjs"
import "@tensorflow/tfjs-backend-wasm"
import { Native, Wasm } from "@papo/kernels"

const args = process.argv.slice(2)
const flag = (name: string, def: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : def
}
const names = args.filter((a) => a === "small" || a === "medium") as Array<"small" | "medium">
const configs = { small: { h: 4 }, medium: { h: 8 } } as const
const rows = flag("--rows", 80)
const threads = flag("--threads", 2)
const minMs = flag("--ms", 400)
if (threads !== 1 && threads !== 2) throw new Error(`--threads must be 1 or 2, got ${threads}`)

await tf.setBackend("wasm")
await tf.ready()
const status = Wasm.install()
if (!status.available) throw new Error(`attention bench needs the native kernels: ${status.reason}`)
Native.configure({ threads })

const causalSoftmax: (s: tf.Tensor) => tf.Tensor = tf.customGrad(((s: tf.Tensor, save: tf.GradSaveFunc) => {
  const y = Wasm.causalSoftmax(s)
  save([y])
  return { value: y, gradFunc: (dy: tf.Tensor, saved: Array<tf.Tensor>) => Wasm.softmaxGrad(saved[0]!, dy) }
}) as never) as never

const chain = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, n: number, t: number, h: number): tf.Tensor => {
  const hd = q.shape[1]! / h
  const heads = (x: tf.Tensor): tf.Tensor4D => tf.transpose(tf.reshape(x, [n, t, h, hd]), [0, 2, 1, 3])
  const att = causalSoftmax(tf.matMul(heads(tf.mul(q, 1 / Math.sqrt(hd))), heads(k), false, true))
  return tf.reshape(tf.transpose(tf.matMul(att, heads(v)), [0, 2, 1, 3]), [n * t, h * hd])
}

/** Fastest wall-clock ms of `f` and its mean CPU ms, over at least `minMs` of calls. */
const time = (f: () => void): { ms: number; cpuMs: number } => {
  f()
  let best = Infinity, calls = 0
  const start = performance.now(), cpu = process.cpuUsage()
  while (performance.now() - start < minMs || calls < 5) {
    const t0 = performance.now()
    f()
    best = Math.min(best, performance.now() - t0)
    calls++
  }
  const used = process.cpuUsage(cpu)
  return { ms: best, cpuMs: (used.user + used.system) / 1000 / calls }
}

const round = (x: number): number => Math.round(x * 100) / 100

for (const name of names.length > 0 ? names : (["small", "medium"] as const)) {
  const t = 56, hd = 32, h = configs[name].h, d = h * hd, n = rows
  const qkv = tf.randomNormal([n * t, 3 * d], 0, 1, "float32", 1), dy = tf.randomNormal([n * t, d], 0, 1, "float32", 2)
  const [q, k, v] = tf.split(qkv, 3, 1) as [tf.Tensor, tf.Tensor, tf.Tensor]
  const flops = { forward: 4 * t * t * hd * n * h, "forward+backward": 12 * t * t * hd * n * h }
  const passes = {
    forward: { chain: () => tf.tidy(() => chain(q, k, v, n, t, h)), fused: () => Wasm.attention(qkv, t, h) },
    "forward+backward": {
      chain: () => tf.tidy(() => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(chain(a, b, c, n, t, h), dy)))([q, k, v])),
      fused: () =>
        tf.tidy(() => {
          const [out, probs] = Wasm.attentionKeepingProbs(qkv, t, h)
          return [out, Wasm.attentionGrad(qkv, probs, dy, t, h)]
        })
    }
  }
  for (const [pass, fs] of Object.entries(passes) as Array<[keyof typeof passes, (typeof passes)[keyof typeof passes]]>) {
    const c = time(() => tf.dispose(fs.chain())), f = time(() => tf.dispose(fs.fused()))
    console.log(JSON.stringify({
      bench: "attention", config: name, rows: n, t, heads: h, hd, threads, pass,
      chain_ms: round(c.ms), fused_ms: round(f.ms), speedup: round(c.ms / f.ms),
      chain_cpu_ms: round(c.cpuMs), fused_cpu_ms: round(f.cpuMs), fused_gflops: round(flops[pass] / f.ms / 1e6)
    }))
  }
  tf.dispose([qkv, dy, q, k, v])
}
