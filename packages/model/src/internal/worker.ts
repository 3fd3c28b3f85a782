/**
 * The data-parallel worker: a replica of the policy (and reference, and optimizer) on its own tfjs wasm
 * instance, answering the requests of Parallel.ts.
 */
import { parentPort } from "node:worker_threads"
import * as tf from "@tensorflow/tfjs"
import { initBackend } from "@papo/backend"
import * as Optimizer from "../Optimizer.js"
import * as Policy from "../Policy.js"
import { Xoshiro128 } from "@papo/random"
import * as Sampling from "../Sampling.js"
import { fromWire, type Request, type WireBatch } from "./protocol.js"
import { disposeMicroBatches, gradientsOf, type LossRows, type Part } from "./update.js"

const port = parentPort!
let policy: Policy.Policy | null = null
let reference: Policy.Policy | null = null
let opt: Optimizer.AdamW | null = null
let pending: Record<string, tf.Tensor> | null = null // this worker's gradients, awaiting the other part

const batchOf = (b: WireBatch): Policy.Batch => ({ images: fromWire(b.images), promptIds: fromWire(b.promptIds), responseIds: fromWire(b.responseIds) })
const arrays = (grads: Record<string, tf.Tensor>): Record<string, Float32Array> =>
  Object.fromEntries(Object.entries(grads).map(([k, t]) => [k, t.dataSync() as Float32Array]))
const need = <A>(x: A | null, what: string): A => {
  if (x === null) throw new Error(`worker: no ${what} (init first)`)
  return x
}

const handle = (req: Request): { result: unknown; transfer: Array<ArrayBuffer> } => {
  switch (req.kind) {
    case "init": {
      policy = Policy.create(req.config, 0)
      Policy.setWeights(policy, req.weights)
      if (req.referenceWeights !== null) {
        reference = Policy.reference(policy)
        Policy.setWeights(reference, req.referenceWeights)
      }
      if (req.optimizer !== null) {
        opt = Optimizer.adamW(policy, req.optimizer.config)
        Optimizer.setState(opt, req.optimizer.state)
      }
      return { result: null, transfer: [] }
    }
    case "sample": {
      const images = fromWire(req.images), promptIds = fromWire(req.promptIds)
      const r = Sampling.sample(need(policy, "policy"), images, promptIds, req.options, Xoshiro128.fromState(req.rng))
      tf.dispose([images, promptIds, r.responseIds, r.responseMask])
      return { result: { ids: r.ids, lengths: r.lengths, logProbs: r.logProbs }, transfer: [r.ids.buffer as ArrayBuffer, r.lengths.buffer as ArrayBuffer, r.logProbs.buffer as ArrayBuffer] }
    }
    case "logProbs": {
      const model = need(req.model === "policy" ? policy : reference, req.model)
      const b = batchOf(req.batch)
      const lp = Policy.logProbs(model, b, req.temperature)
      const data = lp.dataSync() as Float32Array
      tf.dispose([lp, b.images, b.promptIds, b.responseIds])
      return { result: data, transfer: [data.buffer as ArrayBuffer] }
    }
    case "gradients": {
      const parts = req.parts.map((w): Part => ({
        batch: batchOf(w.batch),
        inputs: Object.fromEntries(Object.entries(w.inputs).map(([k, v]) => [k, v === null ? null : fromWire(v)])) as unknown as LossRows,
        share: w.share
      }))
      const g = gradientsOf(need(policy, "policy"), parts, req.loss, req.count, req.temperature)
      disposeMicroBatches(parts)
      pending = g.grads
      return { result: { loss: g.loss, metrics: g.metrics, grads: arrays(g.grads) }, transfer: [] }
    }
    case "update": {
      const mine = need(pending, "pending gradients")
      pending = null
      // Same operand order as the main thread (main part + worker part): bit-identical sums on both sides.
      const sum = tf.tidy(() => Object.fromEntries(Object.entries(mine).map(([k, t]) => [k, tf.add(tf.tensor(req.grads[k]!, t.shape), t)])))
      const r = Optimizer.update(need(policy, "policy"), need(opt, "optimizer"), sum)
      tf.dispose([...Object.values(sum), ...Object.values(mine)])
      return { result: r, transfer: [] }
    }
    case "weights":
      return { result: Policy.getWeights(need(policy, "policy")), transfer: [] }
    case "stop":
      return { result: null, transfer: [] }
  }
}

await initBackend("wasm")
port.on("message", (msg: { id: number; req: Request }) => {
  try {
    const { result, transfer } = handle(msg.req)
    port.postMessage({ id: msg.id, ok: true, result }, transfer)
    if (msg.req.kind === "stop") port.close()
  } catch (e) {
    port.postMessage({ id: msg.id, ok: false, error: e instanceof Error ? e.message : String(e) })
  }
})
port.postMessage({ id: -1, ok: true, result: "ready" })
