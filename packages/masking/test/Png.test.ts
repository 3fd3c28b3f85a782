/**
 * Masking a real image: two MNIST digits read from a PNG file (fixtures/README.md gives its provenance).
 */
import assert from "node:assert/strict"
import { readFileSync } from "node:fs"
import { describe, it } from "node:test"
import { PNG } from "pngjs"
import { patchGrid } from "../src/Image.js"
import * as Masking from "../src/Masking.js"
import { Mt19937 } from "@papo/random"

const png = PNG.sync.read(readFileSync(new URL("./fixtures/mnist-37.png", import.meta.url)))
/** pngjs decodes to RGBA: [28, 56, 4] with R = G = B and A = 255. */
const rgba = { data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length), shape: [png.height, png.width, 4] }
const gray = { data: Uint8Array.from({ length: png.width * png.height }, (_, i) => png.data[4 * i]!), shape: [png.height, png.width] }

describe("masking the MNIST PNG fixture", () => {
  it("is the 28×56 digit pair it claims to be", () => {
    assert.deepEqual(gray.shape, [28, 56])
    const ink = gray.data.filter((v) => v > 0).length
    assert.ok(ink > 100 && ink < 800, `ink pixels: ${ink}`) // two handwritten strokes, mostly background
    assert.ok(rgba.data.every((v, i) => (i % 4 === 3 ? v === 255 : v === gray.data[i >> 2])))
  })

  it("the reference default masks RGBA patches in every channel, alpha included (reference caveat)", () => {
    const { image, patchMask } = Masking.maskImage(rgba, Masking.defaults, Mt19937.seed(0))
    assert.deepEqual(patchMask.shape, [2, 4])
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 56; x++) {
        const masked = patchMask.data[Math.floor(y / 14) * 4 + Math.floor(x / 14)] === 1
        const px = Array.from(image.data.subarray((y * 56 + x) * 4, (y * 56 + x) * 4 + 4))
        assert.deepEqual(px, masked ? [0, 0, 0, 0] : Array.from(rgba.data.subarray((y * 56 + x) * 4, (y * 56 + x) * 4 + 4)))
      }
    }
  })

  it("a masked image survives a PNG round trip", () => {
    const { image } = Masking.maskImage(gray, Masking.makeConfig({ patchSize: 7 }), Mt19937.seed(5))
    const out = new PNG({ width: 56, height: 28 })
    out.data = Buffer.from(Uint8Array.from({ length: 56 * 28 * 4 }, (_, i) => (i % 4 === 3 ? 255 : image.data[i >> 2]!)))
    const back = PNG.sync.read(PNG.sync.write(out, { colorType: 0 }))
    assert.deepEqual(Uint8Array.from({ length: 56 * 28 }, (_, i) => back.data[4 * i]!), image.data)
  })

  it("semantic masking with local contrast hides the strokes first, never a blank patch", () => {
    const config = Masking.makeConfig({ strategy: "semantic", patchSize: 7, prob: 0.25 }) // 4×8 grid, k = 8
    const { image, patchMask } = Masking.maskImage(gray, config)
    const grid = patchGrid(28, 56, 7)
    const inkPerPatch = Array.from({ length: grid.count }, () => 0)
    gray.data.forEach((v, i) => {
      if (v > 0) inkPerPatch[Math.floor(Math.floor(i / 56) / 7) * 8 + Math.floor((i % 56) / 7)]! += 1
    })
    const blank = inkPerPatch.filter((n) => n === 0).length
    assert.ok(blank >= 8, `blank patches: ${blank}`) // so a wrong choice could hit one
    assert.equal(patchMask.data.reduce((a, b) => a + b, 0), 8)
    patchMask.data.forEach((m, p) => m === 1 && assert.ok(inkPerPatch[p]! > 0, `patch ${p} is blank`))
    const inkLeft = image.data.filter((v) => v > 0).length
    const inkBefore = gray.data.filter((v) => v > 0).length
    assert.ok(inkLeft < inkBefore / 2, `ink left ${inkLeft} of ${inkBefore}`) // the 8 busiest patches hold most strokes
  })
})
