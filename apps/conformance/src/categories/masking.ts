/**
 * Conformance runner for the @papo/masking category of `papo-golden.json`: `masking`
 * (`papo_utils.py::random_patch_blackening`), replaying the recorded uniform draws.
 */
import { createHash } from "node:crypto"
import { Masking } from "@papo/masking"
import { type CategoryRunner, field } from "./Category.js"

/** A nested uint8 array `[H][W][C]` or `[H][W]` as flat C-order bytes and its shape. */
const fromNested = (nested: Array<unknown>): { data: Uint8Array; shape: Array<number> } => {
  const shape: Array<number> = []
  for (let a: unknown = nested; Array.isArray(a); a = a[0]) shape.push(a.length)
  return { data: Uint8Array.from((nested as Array<number>).flat(shape.length) as Array<number>), shape }
}

/** Flat C-order values back to nested arrays of the given shape. */
const toNested = <T>(flat: ArrayLike<T>, shape: ReadonlyArray<number>, offset = 0): unknown => {
  const [n, ...rest] = shape
  const stride = rest.reduce((a, b) => a * b, 1)
  return Array.from({ length: n! }, (_, i) => (rest.length === 0 ? flat[offset + i] : toNested(flat, rest, offset + i * stride)))
}

const masking: CategoryRunner = (hp, inp) => {
  const config = Masking.makeConfig({ strategy: "random", fill: "zero", patchSize: field(hp, "patch_size"), prob: field(hp, "black_prob") })
  const { image, patchMask } = Masking.maskImage(fromNested(field(inp, "image")), config, field<Array<number>>(inp, "uniform_draws"))
  return {
    patch_mask: toNested(Array.from(patchMask.data, (v) => v === 1), patchMask.shape),
    masked_image: toNested(image.data, image.shape),
    output_sha256: createHash("sha256").update(image.data).digest("hex")
  }
}

export const maskingRunners: Readonly<Record<string, CategoryRunner>> = { masking }
