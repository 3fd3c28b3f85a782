import assert from "node:assert/strict"
import { before, describe, it } from "node:test"
import * as tf from "@tensorflow/tfjs"
import fc from "fast-check"
import { MaskingError } from "../src/Image.js"
import * as Masking from "../src/Masking.js"
import { Mt19937 } from "@papo/random"
import { maskTensor } from "../src/TensorMasking.js"
import { batchArb, imageArb, patchSizeArb } from "./arbitraries.js"

before(async () => {
  await tf.setBackend("cpu")
})

describe("maskTensor", () => {
  it("property: equals the typed-array masking, int32 and float32, single images", () => {
    fc.assert(
      fc.property(imageArb, patchSizeArb, fc.constantFrom(...Object.values(Masking.presets)), (image, s, preset) => {
        const config = { ...preset, patchSize: s }
        const dtype = image.data instanceof Float32Array ? "float32" : "int32"
        const t = tf.tensor(Array.from(image.data), [...image.shape], dtype)
        const before = tf.memory().numTensors
        const out = maskTensor(t, config, Mt19937.seed(7))
        assert.equal(tf.memory().numTensors, before + 2) // exactly the two results
        const expected = Masking.maskImage(image, config, Mt19937.seed(7))
        assert.equal(out.image.dtype, dtype)
        assert.deepEqual(out.image.shape, image.shape)
        assert.deepEqual(Array.from(out.image.dataSync()), Array.from(expected.image.data))
        assert.equal(out.patchMask.dtype, "bool")
        assert.deepEqual(out.patchMask.shape, expected.patchMask.shape)
        assert.deepEqual(Array.from(out.patchMask.dataSync()), Array.from(expected.patchMask.data))
        tf.dispose([t, out.image, out.patchMask])
      }),
      { numRuns: 20 }
    )
  })

  it("property: a rank-4 tensor is a batch, one mask per image", () => {
    fc.assert(
      fc.property(batchArb, patchSizeArb, (batch, s) => {
        const shape = batch.shape.length === 3 ? [...batch.shape, 1] : [...batch.shape]
        const t = tf.tensor(Array.from(batch.data), shape, "int32")
        const out = maskTensor(t, { ...Masking.defaults, patchSize: s }, Mt19937.seed(1))
        const expected = Masking.maskBatch({ data: batch.data, shape }, { ...Masking.defaults, patchSize: s }, Mt19937.seed(1))
        assert.deepEqual(out.patchMask.shape, [shape[0], Math.ceil(shape[1]! / s), Math.ceil(shape[2]! / s)])
        assert.deepEqual(Array.from(out.image.dataSync()), Array.from(expected.image.data))
        tf.dispose([t, out.image, out.patchMask])
      }),
      { numRuns: 20 }
    )
  })

  it("leaves the input tensor untouched", () => {
    const t = tf.fill([28, 28], 200, "int32")
    const out = maskTensor(t, Masking.presets.full)
    assert.ok(Array.from(t.dataSync()).every((v) => v === 200))
    assert.ok(Array.from(out.image.dataSync()).every((v) => v === 0))
    tf.dispose([t, out.image, out.patchMask])
  })

  it("rejects bool tensors and bad ranks with a MaskingError", () => {
    const b = tf.tensor([true, false], [1, 2], "bool")
    const v = tf.zeros([5])
    assert.throws(() => maskTensor(b, Masking.presets.full), (e) => e instanceof MaskingError && /dtype must be int32 or float32, got bool/.test(e.message))
    assert.throws(() => maskTensor(v, Masking.presets.full), (e) => e instanceof MaskingError && /got \[5\]/.test(e.message))
    tf.dispose([b, v])
  })
})
