import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { Wasm } from "@papo/kernels"
import { Effect } from "effect"
import { Backend, describe, initBackend } from "../src/index.js"

// Which native TensorFlow packages load here decides what `auto` must pick; on the machines this project
// targets neither does (libtensorflow cannot be downloaded), and `auto` must fall back to wasm.
const loads = async (spec: string): Promise<boolean> => import(spec).then(() => true, () => false)
const gpu = await loads(["@tensorflow", "tfjs-node-gpu"].join("/"))
const cpuNative = !gpu && (await loads(["@tensorflow", "tfjs-node"].join("/")))

test("auto takes the first backend that loads, and says why each one before it was skipped", async () => {
  const choice = await initBackend("auto")
  assert.equal(tf.getBackend(), choice.tfBackend)
  const expected = gpu ? "tensorflow-gpu" : cpuNative ? "tensorflow" : "wasm"
  assert.equal(choice.name, expected)
  const order = ["tensorflow-gpu", "tensorflow", "wasm"] as const
  assert.deepEqual(choice.skipped.map((s) => s.name), order.slice(0, order.indexOf(expected)))
  for (const s of choice.skipped) assert.match(s.reason, /\S/, `${s.name} gave no reason`)
  assert.equal(tf.tensor1d([1, 2, 3]).sum().dataSync()[0], 6)
})

test("wasm runs on the native matMul kernels unless PAPO_NATIVE=0, and the backend line says which", async () => {
  const choice = await initBackend("wasm")
  const native = choice.native
  assert.ok(native !== null)
  if (process.env["PAPO_NATIVE"] === "0") {
    assert.deepEqual(native, { available: false, reason: "disabled by PAPO_NATIVE=0" })
    assert.equal(describe(choice), "wasm (native kernels off: disabled by PAPO_NATIVE=0)")
  } else if (process.env["PAPO_NATIVE"] === "1") {
    assert.ok(native.available, `PAPO_NATIVE=1 but ${JSON.stringify(native)}`)
  }
  assert.equal(Wasm.isInstalled(), native.available)
  assert.match(describe(choice), native.available ? /^wasm \+ native kernels \((avx2-fma|generic), [12] threads\)$/ : /^wasm \(native kernels off: .+\)$/)
  // Either way the product is right: [[1, 2], [3, 4]] · [[5], [6]] = [[17], [39]].
  assert.deepEqual(Array.from(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync()), [17, 39])
})

test("a named backend is used as asked, and only wasm carries the native kernels", async () => {
  const wasm = await initBackend("wasm")
  assert.equal(wasm.name, "wasm")
  assert.equal(tf.getBackend(), "wasm")
  const cpu = await initBackend("cpu")
  assert.equal(tf.getBackend(), "cpu")
  assert.deepEqual(cpu.skipped, [])
  assert.equal(cpu.native, null)
  assert.equal(describe(cpu), "cpu")
})

test("an unknown backend name is refused with the valid choices", async () => {
  await assert.rejects(() => initBackend("gpu" as never), /Unknown backend "gpu"; expected one of auto, /)
})

const loaded = (settings: Parameters<typeof Backend.layer>[0]) =>
  Effect.runPromise(Effect.result(Effect.gen(function*() { return yield* Backend }).pipe(Effect.provide(Backend.layer(settings)))))

test("the Backend layer holds what loaded, not what was asked for, with the run's threads", async () => {
  const auto = await loaded({ backend: "auto", threads: 2 })
  assert.equal(auto._tag, "Success")
  if (auto._tag !== "Success") return
  assert.equal(auto.success.requested, "auto")
  assert.equal(auto.success.name, gpu ? "tensorflow-gpu" : cpuNative ? "tensorflow" : "wasm")
  assert.equal(auto.success.tfBackend, tf.getBackend())
  assert.equal(auto.success.threads, 2)
  // Under the native kernels both cores already work inside each matMul: one replica, as Parallel decides.
  const native = auto.success.native?.available === true
  assert.equal(auto.success.replicas, native ? 1 : 2)
  assert.equal(/, model on 2 threads$/.test(describe(auto.success)), !native)
  const cpu = await loaded({ backend: "cpu", threads: 2 })
  assert.equal(cpu._tag === "Success" && describe(cpu.success), "cpu, model on 2 threads")
  assert.equal(tf.getBackend(), "cpu")
  const one = await loaded({ backend: "cpu", threads: 1 })
  assert.equal(one._tag === "Success" && describe(one.success), "cpu")
})

test("the Backend layer fails with a BackendError carrying the name asked for", async () => {
  const r = await loaded({ backend: "gpu" as never, threads: 1 })
  assert.equal(r._tag, "Failure")
  if (r._tag !== "Failure") return
  assert.equal(r.failure._tag, "BackendError")
  assert.equal(r.failure.requested, "gpu")
  assert.match(r.failure.message, /Unknown backend "gpu"; expected one of auto, /)
})
