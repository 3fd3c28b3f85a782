/**
 * Bounded arbitraries shared by the masking tests: small images of every supported layout and storage
 * type, patch sizes and probabilities.
 */
import fc from "fast-check"
import type { ImageArray } from "../src/Image.js"

/** `[H, W]` or `[H, W, C]` with C ∈ {1, 3, 4}, sides 1–40. */
export const shapeArb: fc.Arbitrary<Array<number>> = fc
  .tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.constantFrom(0, 1, 3, 4))
  .map(([h, w, c]) => (c === 0 ? [h, w] : [h, w, c]))

const size = (shape: ReadonlyArray<number>) => shape.reduce((a, b) => a * b, 1)

/** Pixel data of the given shape: uint8, or float32 in [0, 1] (8-bit values / 255, as images are). */
export const dataArb = (shape: ReadonlyArray<number>, kind: "uint8" | "float32"): fc.Arbitrary<ImageArray> =>
  kind === "uint8"
    ? fc.uint8Array({ minLength: size(shape), maxLength: size(shape) }).map((data) => ({ data, shape }))
    : fc.uint8Array({ minLength: size(shape), maxLength: size(shape) }).map((bytes) => ({ data: Float32Array.from(bytes, (v) => v / 255), shape }))

/** An image of any supported shape and storage type. */
export const imageArb: fc.Arbitrary<ImageArray> = fc
  .tuple(shapeArb, fc.constantFrom("uint8" as const, "float32" as const))
  .chain(([shape, kind]) => dataArb(shape, kind))

/** A batch `[B, H, W(, C)]` of 1–4 uint8 images. */
export const batchArb: fc.Arbitrary<ImageArray> = fc
  .tuple(fc.integer({ min: 1, max: 4 }), shapeArb)
  .chain(([b, shape]) => dataArb([b, ...shape], "uint8"))

export const patchSizeArb = fc.integer({ min: 1, max: 16 })
/**
 * A probability, spread evenly over [0, 1] with the edges and the reference's 0.6 included (`fc.double`
 * is spread over the float encodings instead, so most of its values would be tiny).
 */
export const probArb = fc.oneof(fc.constantFrom(0, 0.6, 1), fc.integer({ min: 0, max: 10_000 }).map((i) => i / 10_000))
/** A uniform draw in [0, 1), with 53 random bits like numpy's. */
export const drawArb = fc.bigInt({ min: 0n, max: 2n ** 53n - 1n }).map((i) => Number(i) / 2 ** 53)
/** One uniform draw per patch of an `h × w` image. */
export const drawsArb = (h: number, w: number, s: number) =>
  fc.array(drawArb, { minLength: Math.ceil(h / s) * Math.ceil(w / s), maxLength: Math.ceil(h / s) * Math.ceil(w / s) })
