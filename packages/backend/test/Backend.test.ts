import assert from "node:assert/strict"
import { test } from "node:test"
import * as tf from "@tensorflow/tfjs"
import { initBackend } from "../src/index.js"

test("auto falls back past the native packages and activates the backend it reports", async () => {
  const choice = await initBackend("auto")
  assert.equal(tf.getBackend(), choice.tfBackend)
  assert.ok(["tensorflow-gpu", "tensorflow", "wasm", "cpu"].includes(choice.name))
  // Every candidate before the chosen one was tried and says why it was skipped.
  for (const s of choice.skipped) assert.ok(s.reason.length > 0, `${s.name} gave no reason`)
  assert.equal(tf.tensor1d([1, 2, 3]).sum().dataSync()[0], 6)
})

test("a named backend is used as asked", async () => {
  const wasm = await initBackend("wasm")
  assert.equal(wasm.name, "wasm")
  assert.equal(tf.getBackend(), "wasm")
  const cpu = await initBackend("cpu")
  assert.equal(tf.getBackend(), "cpu")
  assert.deepEqual(cpu.skipped, [])
})

test("an unknown backend name is refused with the valid choices", async () => {
  await assert.rejects(() => initBackend("gpu" as never), /Unknown backend "gpu"; expected one of auto, /)
})
