import assert from "node:assert/strict"
import { test } from "node:test"
import { PNG } from "pngjs"
import fc from "fast-check"
import { barChart, ema, imageGrid, lineChart } from "../src/index.js"

const decode = (buf: Buffer) => PNG.sync.read(buf)
const pixel = (png: PNG, x: number, y: number) => Array.from(png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4))

test("a line chart is a PNG of the requested size with the series drawn in its colour", () => {
  const png = decode(lineChart({ title: "reward", xLabel: "step", yLabel: "reward", width: 320, height: 200,
    series: [{ name: "PAPO-G", points: [[0, 0], [10, 1]], color: "#ff0000" }] }))
  assert.equal(png.width, 320)
  assert.equal(png.height, 200)
  let red = 0
  for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! > 200 && png.data[i + 1]! < 60 && png.data[i + 2]! < 60) red++
  assert.ok(red > 100, `only ${red} red pixels`)
})

test("non-finite points are skipped; a chart with none is refused, naming it", () => {
  assert.throws(() => lineChart({ title: "kl", xLabel: "s", yLabel: "v", series: [{ name: "a", points: [[1, NaN]] }] }), /lineChart "kl": no finite points/)
})

test("EMA smoothing keeps a constant series constant and stays within the range of the data", () => {
  fc.assert(fc.property(fc.array(fc.double({ min: -5, max: 5, noNaN: true }), { minLength: 1, maxLength: 50 }), fc.double({ min: 0, max: 0.99, noNaN: true }), (ys, w) => {
    const s = ema(ys, w)
    const [lo, hi] = [Math.min(...ys), Math.max(...ys)]
    s.forEach((v) => assert.ok(v >= lo - 1e-9 && v <= hi + 1e-9))
  }))
  assert.ok(ema([3, 3, 3], 0.6).every((v) => Math.abs(v - 3) < 1e-12))
})

test("an image grid shows each image scaled with nearest-neighbour sampling", () => {
  const black = new Uint8Array(4)
  const white = new Float32Array([1, 1, 1, 1])
  const png = decode(imageGrid([{ pixels: black, height: 2, width: 2, channels: 1 }, { pixels: white, height: 2, width: 2, channels: 1 }], { scale: 3 }))
  assert.deepEqual(pixel(png, 6 + 1, 6 + 1), [0, 0, 0, 255])
  const cellW = 2 * 3 + 12
  assert.deepEqual(pixel(png, cellW + 6 + 5, 6 + 5), [255, 255, 255, 255])
  assert.throws(() => imageGrid([{ pixels: black, height: 3, width: 2, channels: 1 }]), /image 0 has 4 values, expected 3×2×1 = 6/)
})

test("a bar chart refuses a series whose length does not match the categories", () => {
  assert.ok(decode(barChart({ title: "acc", yLabel: "%", categories: ["all", "high"], series: [{ name: "GRPO", values: [40, 30] }] })).width > 0)
  assert.throws(() => barChart({ title: "acc", yLabel: "%", categories: ["all"], series: [{ name: "GRPO", values: [1, 2] }] }), /series "GRPO" has 2 values for 1 categories/)
})
