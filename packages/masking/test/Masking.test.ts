import assert from "node:assert/strict"
import { createHash } from "node:crypto"
import { describe, it } from "node:test"
import fc from "fast-check"
import { type ImageArray, imageDims, MaskingError, patchGrid } from "../src/Image.js"
import * as Masking from "../src/Masking.js"
import { Mt19937 } from "@papo/random"
import { localContrast } from "../src/Saliency.js"
import { batchArb, dataArb, drawsArb, imageArb, patchSizeArb, probArb, shapeArb } from "./arbitraries.js"
import { flatten, maskingCases } from "./golden.js"

const { defaults, maskBatch, maskImage, selectPatches, applyPatchMask, makeConfig, presets } = Masking

/** Calls f(y, x, channel, flatIndex, patchIndex) for every value of a single image, with a plain loop. */
const eachValue = (image: ImageArray, s: number, f: (i: number, patch: number, channel: number) => void) => {
  const { height, width, channels } = imageDims(image, false)
  const cols = Math.ceil(width / s)
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < channels; c++) f((y * width + x) * channels + c, Math.floor(y / s) * cols + Math.floor(x / s), c)
}

/** The per-channel mean as the mean fill should store it. */
const channelMeans = (image: ImageArray): Array<number> => {
  const { channels } = imageDims(image, false)
  const sums = new Array<number>(channels).fill(0)
  image.data.forEach((v, i) => (sums[i % channels]! += v))
  const pixels = image.data.length / channels
  return sums.map((sum) => (image.data instanceof Float32Array ? Math.fround(sum / pixels) : Math.round(sum / pixels)))
}

const count = (m: { data: Uint8Array }) => m.data.reduce((a, b) => a + b, 0)

/** An image with its draws for the default patch size of an arbitrary. */
const caseArb = fc
  .tuple(imageArb, patchSizeArb)
  .chain(([image, s]) => fc.tuple(fc.constant(image), fc.constant(s), drawsArb(image.shape[0]!, image.shape[1]!, s), probArb))

describe("maskImage on the golden cases (papo_utils.py::random_patch_blackening)", () => {
  for (const c of maskingCases) {
    it(c.name, () => {
      const { data, shape } = flatten(c.inputs.image)
      const config = makeConfig({ patchSize: c.hyperparameters.patch_size, prob: c.hyperparameters.black_prob })
      const expected = flatten(c.outputs.masked_image)
      for (const randomness of [c.inputs.uniform_draws, Mt19937.seed(c.inputs.seed)]) {
        const { image, patchMask } = maskImage({ data: Uint8Array.from(data), shape }, config, randomness)
        assert.deepEqual(image.shape, expected.shape)
        assert.deepEqual(Array.from(image.data), expected.data)
        assert.equal(createHash("sha256").update(image.data).digest("hex"), c.outputs.output_sha256)
        assert.deepEqual(patchMask.shape, [c.outputs.patch_mask.length, c.outputs.patch_mask[0]!.length])
        assert.deepEqual(Array.from(patchMask.data, (v) => v === 1), c.outputs.patch_mask.flat())
      }
    })
  }
})

describe("variants", () => {
  const img = { data: Uint8Array.from({ length: 4 * 6 * 3 }, (_, i) => 10 + (i % 50)), shape: [4, 6, 3] }

  it("full masks every patch, needs no draws, zeroes every value", () => {
    const { image, patchMask } = maskImage(img, presets.full)
    assert.deepEqual(patchMask.shape, [1, 1])
    assert.equal(count(patchMask), 1)
    assert.ok(image.data.every((v) => v === 0))
  })

  it("exact picks the round(p·N) smallest draws", () => {
    const config = makeConfig({ strategy: "exact", patchSize: 2, prob: 0.5 }) // grid 2×3, N = 6, k = 3
    const m = selectPatches(img, config, [0.9, 0.1, 0.5, 0.3, 0.7, 0.2])
    assert.deepEqual(Array.from(m.data), [0, 1, 0, 1, 0, 1])
  })

  it("semantic masks the ⌊p·N⌋ highest-contrast patches", () => {
    // 2×8 grayscale, 2-px patches: flat, std √6875, flat, std 127.5
    const data = Uint8Array.from([0, 0, 0, 200, 50, 50, 0, 255, 0, 0, 100, 0, 50, 50, 255, 0])
    const image = { data, shape: [2, 8] }
    const scores = Array.from(localContrast(image, patchGrid(2, 8, 2)))
    assert.deepEqual(scores.map((v) => Math.round(v * 100) / 100), [0, 82.92, 0, 127.5])
    const m = selectPatches(image, makeConfig({ strategy: "semantic", patchSize: 2, prob: 0.6 })) // k = ⌊2.4⌋ = 2
    assert.deepEqual(Array.from(m.data), [0, 1, 0, 1])
  })

  it("semantic uses the caller's saliency when given", () => {
    const saliency = () => [5, 1, 9, 3, 7, 2]
    const m = selectPatches(img, makeConfig({ strategy: "semantic", patchSize: 2, prob: 0.5, saliency }))
    assert.deepEqual(Array.from(m.data), [1, 0, 1, 0, 1, 0])
  })

  it("mean fills the per-channel mean colour", () => {
    const data = Uint8Array.from([10, 20, 30, 11, 21, 31, 13, 23, 33, 14, 24, 34]) // 2×2 RGB, means 12, 22, 32
    const { image } = maskImage({ data, shape: [2, 2, 3] }, makeConfig({ fill: "mean", patchSize: 1, prob: 0.5 }), [0.1, 0.9, 0.9, 0.2])
    assert.deepEqual(Array.from(image.data), [12, 22, 32, 11, 21, 31, 13, 23, 33, 12, 22, 32])
  })

  it("noise adds clamped Gaussian noise from the generator, after the patch draws", () => {
    const data = new Float32Array(4).fill(0.5)
    const config = makeConfig({ fill: "noise", patchSize: 1, prob: 1, noiseStd: 0.1 })
    const { image } = maskImage({ data, shape: [2, 2] }, config, Mt19937.seed(3))
    const g = Mt19937.seed(3)
    for (let i = 0; i < 4; i++) g.random()
    assert.deepEqual(Array.from(image.data), Array.from({ length: 4 }, () => Math.fround(Math.min(1, Math.max(0, 0.5 + 0.1 * g.normal())))))
  })

  it("presets are valid configs, each one change from the reference", () => {
    for (const [name, config] of Object.entries(presets)) assert.equal(Masking.validateConfig(config), config, name)
    assert.deepEqual(defaults, { strategy: "random", patchSize: 14, prob: 0.6, fill: "zero", noiseStd: 0.7 })
  })
})

describe("errors name the problem", () => {
  const img = { data: new Uint8Array(12), shape: [2, 2, 3] }
  const cases: Array<[string, () => unknown, RegExp]> = [
    ["patch size 0", () => maskImage(img, { ...defaults, patchSize: 0 }, [0]), /patchSize must be a positive integer, got 0/],
    ["patch size 2.5", () => maskImage(img, { ...defaults, patchSize: 2.5 }, [0]), /patchSize must be a positive integer, got 2.5/],
    ["prob 1.5", () => maskImage(img, { ...defaults, prob: 1.5 }, [0]), /prob must be a number in \[0, 1\], got 1.5/],
    ["prob NaN", () => makeConfig({ prob: Number.NaN }), /prob must be a number in \[0, 1\], got NaN/],
    ["short data", () => maskImage({ data: new Uint8Array(11), shape: [2, 2, 3] }, defaults, [0]), /shape \[2, 2, 3\] needs 12 values, but the data holds 11/],
    ["rank 1", () => maskImage({ data: new Uint8Array(4), shape: [4] }, defaults, [0]), /expected an image shape \[H, W\] or \[H, W, C\], got \[4\]/],
    ["batch rank", () => maskBatch({ data: new Uint8Array(12), shape: [12] }, defaults, [0]), /expected a batch shape \[B, H, W\] or \[B, H, W, C\], got \[12\]/],
    ["zero side", () => maskImage({ data: new Uint8Array(0), shape: [0, 2] }, defaults, []), /must hold positive integers/],
    ["draw count", () => maskImage(img, makeConfig({ patchSize: 1 }), [0.5]), /needs 4 uniform draws, got 1/],
    ["draw range", () => maskImage(img, defaults, [1]), /uniform draw 0 is 1, not in \[0, 1\)/],
    ["no randomness", () => maskImage(img, defaults), /strategy "random" needs 1 uniform draws or an Rng/],
    ["noise without rng", () => maskImage(img, presets.noise, [0.5]), /fill "noise" needs an Rng/],
    ["unknown strategy", () => makeConfig({ strategy: "blur" as never }), /unknown strategy "blur"; valid: random, exact, semantic, full/],
    ["unknown fill", () => makeConfig({ fill: "red" as never }), /unknown fill "red"; valid: zero, mean, noise/],
    ["saliency length", () => maskImage(img, { ...presets.semantic, saliency: () => [1, 2] }), /saliency returned 2 scores for a 1×1 grid of 1 patches/],
    ["mask shape", () => applyPatchMask(img, { data: new Uint8Array(4), shape: [2, 2] }, defaults), /patchMask has shape \[2, 2\]/]
  ]
  for (const [name, f, message] of cases) {
    it(name, () => assert.throws(f, (e: unknown) => e instanceof MaskingError && message.test(e.message)))
  }
})

describe("properties", () => {
  it("pixels outside masked patches are unchanged (every strategy and fill)", () => {
    fc.assert(
      fc.property(
        caseArb,
        fc.constantFrom(...(["random", "exact", "semantic", "full"] as const)),
        fc.constantFrom(...(["zero", "mean", "noise"] as const)),
        fc.integer({ min: 0, max: 1000 }),
        ([image, s, _draws, prob], strategy, fill, seed) => {
          const config = makeConfig({ strategy, fill, patchSize: s, prob })
          const { image: out, patchMask } = maskImage(image, config, Mt19937.seed(seed))
          eachValue(image, s, (i, p) => {
            if (patchMask.data[p] === 0) assert.equal(out.data[i], image.data[i])
          })
        }
      ),
      { numRuns: 150 }
    )
  })

  it("pixels inside masked patches are exactly the fill (zero, mean)", () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom("zero" as const, "mean" as const), ([image, s, draws, prob], fill) => {
        const { image: out, patchMask } = maskImage(image, makeConfig({ fill, patchSize: s, prob }), draws)
        const means = channelMeans(image)
        eachValue(image, s, (i, p, c) => {
          if (patchMask.data[p] === 1) assert.equal(out.data[i], fill === "zero" ? 0 : means[c])
        })
      }),
      { numRuns: 150 }
    )
  })

  it("noise-filled values stay in the value range", () => {
    fc.assert(
      fc.property(imageArb, patchSizeArb, fc.integer({ min: 0, max: 300 }).map((i) => i / 100), (image, s, noiseStd) => {
        const { image: out } = maskImage(image, makeConfig({ fill: "noise", patchSize: s, noiseStd }), Mt19937.seed(0))
        const hi = image.data instanceof Float32Array ? 1 : 255
        assert.ok(out.data.every((v) => v >= 0 && v <= hi && (hi === 1 || Number.isInteger(v))))
      }),
      { numRuns: 50 }
    )
  })

  it("the mask is a function of the draws alone (random, exact, full)", () => {
    fc.assert(
      fc.property(
        shapeArb.chain((shape) => fc.tuple(dataArb(shape, "uint8"), dataArb(shape, "float32"))),
        patchSizeArb,
        probArb,
        fc.constantFrom("random" as const, "exact" as const, "full" as const),
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        ([a, b], s, prob, strategy, seed) => {
          const config = makeConfig({ strategy, patchSize: s, prob })
          const grid = patchGrid(a.shape[0]!, a.shape[1]!, s)
          const g = Mt19937.seed(seed)
          const draws = Array.from({ length: Masking.drawsPerImage(config, grid) }, () => g.random())
          const fromDraws = strategy === "full" ? undefined : draws
          const ma = maskImage(a, config, fromDraws).patchMask
          assert.deepEqual(maskImage(b, config, fromDraws).patchMask, ma) // other pixels, other dtype
          assert.deepEqual(selectPatches(b, config, fromDraws), ma)
          assert.deepEqual(maskImage(a, config, Mt19937.seed(seed)).patchMask, ma) // the generator draws the same
        }
      ),
      { numRuns: 100 }
    )
  })

  it("random masks patch i iff draws[i] < prob", () => {
    fc.assert(
      fc.property(caseArb, ([image, s, draws, prob]) => {
        const m = selectPatches(image, makeConfig({ patchSize: s, prob }), draws)
        assert.deepEqual(Array.from(m.data), draws.map((d) => (d < prob ? 1 : 0)))
      }),
      { numRuns: 100 }
    )
  })

  it("exact mode masks exactly round(prob·N) patches", () => {
    fc.assert(
      fc.property(caseArb, ([image, s, draws, prob]) => {
        const m = selectPatches(image, makeConfig({ strategy: "exact", patchSize: s, prob }), draws)
        assert.equal(count(m), Math.round(prob * draws.length))
      }),
      { numRuns: 100 }
    )
  })

  it("semantic masks ⌊prob·N⌋ patches, none less salient than an unmasked one", () => {
    fc.assert(
      fc.property(imageArb, patchSizeArb, probArb, (image, s, prob) => {
        const m = selectPatches(image, makeConfig({ strategy: "semantic", patchSize: s, prob }))
        const scores = localContrast(image, patchGrid(image.shape[0]!, image.shape[1]!, s))
        assert.equal(count(m), Math.floor(prob * m.data.length + 1e-9))
        const masked = Array.from(scores).filter((_, i) => m.data[i] === 1)
        const kept = Array.from(scores).filter((_, i) => m.data[i] === 0)
        assert.ok(Math.min(...masked) >= Math.max(...kept))
      }),
      { numRuns: 100 }
    )
  })

  it("shape and storage type are preserved, the input untouched", () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom(...Object.values(presets)), fc.integer({ min: 0, max: 99 }), ([image, s, _d, prob], preset, seed) => {
        const before = image.data.slice()
        const { image: out, patchMask } = maskImage(image, { ...preset, patchSize: s, prob }, Mt19937.seed(seed))
        assert.equal(out.data.constructor, image.data.constructor)
        assert.deepEqual(out.shape, image.shape)
        assert.equal(out.data.length, image.data.length)
        assert.notEqual(out.data, image.data)
        assert.deepEqual(image.data, before)
        assert.deepEqual(patchMask.shape, [Math.ceil(image.shape[0]! / s), Math.ceil(image.shape[1]! / s)])
      }),
      { numRuns: 100 }
    )
  })

  it("a batch is its images masked one after the other with the same generator", () => {
    fc.assert(
      fc.property(batchArb, patchSizeArb, fc.constantFrom(...Object.values(presets)), fc.integer({ min: 0, max: 99 }), (batch, s, preset, seed) => {
        const config = { ...preset, patchSize: s }
        const whole = maskBatch(batch, config, Mt19937.seed(seed))
        const [b, ...single] = batch.shape
        const size = batch.data.length / b!
        const g = Mt19937.seed(seed)
        for (let i = 0; i < b!; i++) {
          const one = maskImage({ data: batch.data.subarray(i * size, (i + 1) * size), shape: single }, config, g)
          assert.deepEqual(whole.image.data.subarray(i * size, (i + 1) * size), one.image.data)
          const n = one.patchMask.data.length
          assert.deepEqual(whole.patchMask.data.subarray(i * n, (i + 1) * n), one.patchMask.data)
        }
        assert.deepEqual(whole.patchMask.shape, [b, Math.ceil(single[0]! / s), Math.ceil(single[1]! / s)])
      }),
      { numRuns: 50 }
    )
  })

  it("applyPatchMask(selectPatches(…)) equals maskImage", () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom("zero" as const, "mean" as const), ([image, s, draws, prob], fill) => {
        const config = makeConfig({ fill, patchSize: s, prob })
        assert.deepEqual(applyPatchMask(image, selectPatches(image, config, draws), config), maskImage(image, config, draws).image)
      }),
      { numRuns: 50 }
    )
  })

  it("the masked fraction over many draws stays within a binomial bound of prob", () => {
    fc.assert(
      fc.property(probArb, fc.integer({ min: 0, max: 2 ** 32 - 1 }), (prob, seed) => {
        // 64 images of 8×8 patches: M = 4096 Bernoulli(prob) trials. 5σ two-sided: a false alarm ~ 6e-7 per run.
        const batch = { data: new Uint8Array(64 * 16 * 16), shape: [64, 16, 16] }
        const m = maskBatch(batch, makeConfig({ patchSize: 2, prob }), Mt19937.seed(seed)).patchMask
        const trials = m.data.length
        const bound = 5 * Math.sqrt((prob * (1 - prob)) / trials) + 1 / trials
        assert.ok(Math.abs(count(m) / trials - prob) <= bound, `fraction ${count(m) / trials}, prob ${prob}, bound ${bound}`)
      }),
      { numRuns: 100 }
    )
  })
})
