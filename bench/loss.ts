/**
 * npm run bench -- loss [--backend auto|wasm|cpu]
 *
 * Times the full PAPO-G loss (clipped surrogate + k3 reference KL − γ·KL_prcp + double entropy, token-mean)
 * with its gradient with respect to the policy's log-probs, on the paper's micro-batch shapes:
 * 80 × 16 (this repo's benchmark step) and 384 × 2048 (the paper's rollout batch × max response length).
 * One JSON line per shape: median and min over the timed repetitions, after warm-up.
 */
import * as tf from "@tensorflow/tfjs"
import { type BackendName, initBackend } from "@papo/backend"
import { PapoLoss } from "@papo/loss"
import { median } from "./lib/stats.js"

const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}
const backend = await initBackend((arg("--backend") ?? "auto") as BackendName)
const config = PapoLoss.presets["papo-g-7b"] // every term on: PG, ref KL, KL_prcp, both entropies

const shapes: Array<[number, number, number]> = [[80, 16, 50], [384, 2048, 10]]
for (const [b, t, reps] of shapes) {
  const logProbs = tf.randomUniform([b, t], -4, 0)
  const near = () => tf.tidy(() => tf.add(logProbs, tf.randomNormal([b, t], 0, 0.3)))
  const lengths = tf.randomUniform([b, 1], 1, t + 1, "int32")
  const responseMask = tf.tidy(() => tf.cast(tf.less(tf.range(0, t, 1, "int32").reshape([1, t]), lengths), "float32"))
  const advantages = tf.tidy(() => tf.mul(tf.randomNormal([b, 1]), responseMask))
  const fixed = { oldLogProbs: near(), refLogProbs: near(), maskedLogProbs: near(), advantages, responseMask }
  const valueAndGrad = tf.valueAndGrad((lp: tf.Tensor) => PapoLoss.papoLoss({ logProbs: lp, ...fixed }, config).loss)
  const times: Array<number> = []
  for (let i = 0; i < reps + 2; i++) {
    const start = performance.now()
    const { value, grad } = valueAndGrad(logProbs)
    grad.dataSync()
    value.dataSync()
    const ms = performance.now() - start
    tf.dispose([value, grad])
    if (i >= 2) times.push(ms)
  }
  const ms = median(times)
  console.log(JSON.stringify({
    bench: "papo_loss_with_grad",
    backend: backend.name,
    batch: b,
    tokens: t,
    median_ms: +ms.toFixed(3),
    min_ms: +Math.min(...times).toFixed(3),
    tokens_per_s: Math.round((b * t) / (ms / 1000)),
    reps
  }))
  tf.dispose([logProbs, lengths, ...Object.values(fixed)])
}
