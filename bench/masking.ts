/**
 * npm run bench -- masking [--reps N]
 *
 * Masking throughput of the reference default (random 14-px patches, p 0.6, zero fill) on a batch, against
 * a plain copy of the same bytes (`TypedArray.prototype.slice`, which masking also starts with):
 * 80 × 28 × 56 × 1 (this repo's benchmark step: float32 as the model takes it, and uint8) and
 * 384 × 448 × 448 × 3 uint8 (the paper's rollout batch of RGB images). Goal: ratio ≤ 2.
 * One JSON line per workload: median times over the repetitions after warm-up, bytes/s of each, the ratio.
 */
import { Masking } from "@papo/masking"
import { Mt19937 } from "@papo/random"
import { median } from "./lib/stats.js"

const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const reps = Number(arg("--reps") ?? 0)


const workloads = [
  { name: "batch80_28x56x1_float32", shape: [80, 28, 56, 1], make: (n: number) => new Float32Array(n), reps: 400 },
  { name: "batch80_28x56x1_uint8", shape: [80, 28, 56, 1], make: (n: number) => new Uint8Array(n), reps: 400 },
  { name: "batch384_448x448x3_uint8", shape: [384, 448, 448, 3], make: (n: number) => new Uint8Array(n), reps: 10 }
] as const

for (const w of workloads) {
  const n = w.shape.reduce((a, b) => a * b, 1)
  const data = w.make(n)
  const pixelRng = Mt19937.seed(1)
  for (let i = 0; i < n; i++) data[i] = data instanceof Float32Array ? pixelRng.random() : (pixelRng.nextUint32() & 255)
  const batch = { data, shape: w.shape }
  const rng = Mt19937.seed(0)
  const r = reps > 0 ? reps : w.reps
  const copyMs: Array<number> = []
  const maskMs: Array<number> = []
  let masked = 0
  for (let i = 0; i < r + 3; i++) {
    // Interleaved so both see the same machine state; a fresh output each time, as the trainer needs.
    let t = performance.now()
    const copy = data.slice()
    const tc = performance.now() - t
    t = performance.now()
    const out = Masking.maskBatch(batch, Masking.defaults, rng)
    const tm = performance.now() - t
    if (copy.length !== out.image.data.length) throw new Error("size mismatch")
    if (i >= 3) {
      copyMs.push(tc)
      maskMs.push(tm)
      masked += out.patchMask.data.reduce((a, b) => a + b, 0) / out.patchMask.data.length
    }
  }
  const bytes = data.byteLength
  const c = median(copyMs)
  const m = median(maskMs)
  console.log(
    JSON.stringify({
      workload: w.name,
      bytes,
      reps: r,
      copy_ms: +c.toFixed(4),
      mask_ms: +m.toFixed(4),
      copy_bytes_per_s: Math.round(bytes / (c / 1000)),
      mask_bytes_per_s: Math.round(bytes / (m / 1000)),
      ratio_to_copy: +(m / c).toFixed(3),
      masked_fraction: +(masked / r).toFixed(3)
    })
  )
}
