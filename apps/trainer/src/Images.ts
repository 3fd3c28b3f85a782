/**
 * Image files in and out: PNG (pngjs) and JPEG (jpeg-js) decoding to the model's input (bilinear
 * resize, grayscale or RGB), and PNG encoding of logged samples.
 *
 * @since 0.1.0
 */
import { createRequire } from "node:module"
import * as jpeg from "jpeg-js"
import type { Image } from "./Example.js"

interface PngSync {
  readonly read: (buffer: Buffer) => { width: number; height: number; data: Buffer }
  readonly write: (png: { width: number; height: number; data: Buffer }) => Buffer
}
// pngjs ships CommonJS without type declarations: the two sync functions used here, typed.
const png = (createRequire(import.meta.url)("pngjs") as { PNG: { sync: PngSync } }).PNG.sync

/**
 * The shape images are converted to.
 *
 * @category models
 */
export interface ImageShape {
  readonly height: number
  readonly width: number
  readonly channels: number
}

const isPng = (b: Uint8Array) => b.length > 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47
const isJpeg = (b: Uint8Array) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8

/**
 * A decoded image file: RGBA bytes, row-major.
 *
 * @category models
 */
export interface Decoded {
  readonly width: number
  readonly height: number
  readonly rgba: Uint8Array
}

/**
 * Decodes a PNG or JPEG file's bytes (recognized by content, not name) to RGBA bytes. Throws with the
 * reason on an unknown or corrupt file.
 *
 * @category constructors
 */
export const decode = (bytes: Uint8Array): Decoded => {
  if (isPng(bytes)) {
    const img = png.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    return { width: img.width, height: img.height, rgba: img.data }
  }
  if (isJpeg(bytes)) {
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 })
    return { width: img.width, height: img.height, rgba: img.data }
  }
  throw new Error("not a PNG or JPEG file")
}

/**
 * Converts RGBA bytes to `shape`: luminance (ITU-R 601) for one channel, RGB for three; bilinear
 * resampling with pixel centres aligned (as PIL's resize).
 *
 * @category constructors
 */
export const toImage = (src: Decoded, shape: ImageShape): Image => {
  const { height: H, width: W, channels: C } = shape
  const plane = (c: number) => (x: number, y: number) => {
    const o = (y * src.width + x) * 4
    const r = src.rgba[o]!, g = src.rgba[o + 1]!, b = src.rgba[o + 2]!
    return (C === 1 ? 0.299 * r + 0.587 * g + 0.114 * b : [r, g, b][c]!) / 255
  }
  const data = new Float32Array(H * W * C)
  for (let c = 0; c < C; c++) {
    const at = plane(c)
    for (let y = 0; y < H; y++) {
      const sy = Math.min(Math.max((y + 0.5) * (src.height / H) - 0.5, 0), src.height - 1)
      const y0 = Math.floor(sy), y1 = Math.min(y0 + 1, src.height - 1), fy = sy - y0
      for (let x = 0; x < W; x++) {
        const sx = Math.min(Math.max((x + 0.5) * (src.width / W) - 0.5, 0), src.width - 1)
        const x0 = Math.floor(sx), x1 = Math.min(x0 + 1, src.width - 1), fx = sx - x0
        const top = at(x0, y0) * (1 - fx) + at(x1, y0) * fx
        const bottom = at(x0, y1) * (1 - fx) + at(x1, y1) * fx
        data[(y * W + x) * C + c] = top * (1 - fy) + bottom * fy
      }
    }
  }
  return { height: H, width: W, channels: C, data }
}

/**
 * Whether an image has colour: some pixel's red, green and blue differ by more than `tolerance`
 * (out of 255; the default absorbs JPEG's chroma noise on grey images).
 *
 * @example
 * hasColour({ width: 1, height: 1, rgba: new Uint8Array([200, 40, 40, 255]) }) // => true
 *
 * @category constructors
 */
export const hasColour = (image: Decoded, tolerance = 12): boolean => {
  const { rgba } = image
  for (let o = 0; o < rgba.length; o += 4) {
    const r = rgba[o]!, g = rgba[o + 1]!, b = rgba[o + 2]!
    if (Math.max(r, g, b) - Math.min(r, g, b) > tolerance) return true
  }
  return false
}

/**
 * The input size for images of `height × width`: its aspect kept, scaled into
 * `[minPixels, maxPixels]` (down only when above, up only when below), each side a multiple of
 * `patchSize` — the rule of EasyR1's `max_pixels` / `min_pixels` (Qwen2-VL's smart resize), applied once.
 *
 * @example
 * fitShape(96, 96, { minPixels: 784, maxPixels: 3136, patchSize: 7 }) // => { height: 56, width: 56 }
 *
 * @category constructors
 */
export const fitShape = (
  height: number,
  width: number,
  limits: { readonly minPixels: number; readonly maxPixels: number; readonly patchSize: number }
): { readonly height: number; readonly width: number } => {
  const p = limits.patchSize
  const at = (scale: number, round: (x: number) => number) => ({
    height: Math.max(p, round((height * scale) / p) * p),
    width: Math.max(p, round((width * scale) / p) * p)
  })
  const pixels = (s: { height: number; width: number }) => s.height * s.width
  const near = at(1, Math.round)
  if (pixels(near) > limits.maxPixels) {
    const s = at(Math.sqrt(limits.maxPixels / (height * width)), Math.floor)
    if (pixels(s) <= limits.maxPixels) return s
    // An extreme aspect, its short side held at one patch: the long side gives way.
    const fit = (other: number) => Math.max(p, Math.floor(limits.maxPixels / other / p) * p)
    return s.height >= s.width ? { height: fit(s.width), width: s.width } : { height: s.height, width: fit(s.height) }
  }
  if (pixels(near) < limits.minPixels) return at(Math.sqrt(limits.minPixels / (height * width)), Math.ceil)
  return near
}

/**
 * Resizes an image to `shape` (a no-op when it already has that shape).
 *
 * @category constructors
 */
export const resize = (image: Image, shape: ImageShape): Image => {
  if (image.height === shape.height && image.width === shape.width && image.channels === shape.channels) return image
  const rgba = new Uint8Array(image.height * image.width * 4)
  for (let i = 0; i < image.height * image.width; i++) {
    for (let c = 0; c < 3; c++) {
      const v = image.data[i * image.channels + (image.channels === 1 ? 0 : c)]!
      rgba[i * 4 + c] = Math.round(Math.min(Math.max(v, 0), 1) * 255)
    }
    rgba[i * 4 + 3] = 255
  }
  return toImage({ width: image.width, height: image.height, rgba }, shape)
}

/**
 * Encodes images side by side (same height), separated by a 2-px gray bar, as a PNG, scaled up
 * `scale` times with nearest-neighbour so 28-px images are visible.
 *
 * @category constructors
 */
export const encodePng = (images: ReadonlyArray<Image>, scale = 4): Buffer => {
  const gap = 2
  const h = Math.max(...images.map((i) => i.height))
  const w = images.reduce((s, i) => s + i.width, 0) + gap * (images.length - 1)
  const W = w * scale, H = h * scale
  const data = Buffer.alloc(W * H * 4)
  for (let p = 0; p < W * H; p++) {
    data[p * 4] = data[p * 4 + 1] = data[p * 4 + 2] = 128
    data[p * 4 + 3] = 255
  }
  let x0 = 0
  for (const img of images) {
    for (let y = 0; y < img.height * scale; y++) {
      for (let x = 0; x < img.width * scale; x++) {
        const s = (Math.floor(y / scale) * img.width + Math.floor(x / scale)) * img.channels
        const o = (y * W + x0 * scale + x) * 4
        for (let c = 0; c < 3; c++) {
          data[o + c] = Math.round(Math.min(Math.max(img.data[s + (img.channels === 1 ? 0 : c)]!, 0), 1) * 255)
        }
      }
    }
    x0 += img.width + gap
  }
  return png.write({ width: W, height: H, data })
}
