/** The `masking` cases of the repository's golden file (`test/fixtures/papo-golden.json`). */
import { readFileSync } from "node:fs"

export interface MaskingCase {
  readonly name: string
  readonly hyperparameters: { readonly patch_size: number; readonly black_prob: number }
  readonly inputs: { readonly image: Array<unknown>; readonly uniform_draws: Array<number>; readonly seed: number }
  readonly outputs: { readonly patch_mask: Array<Array<boolean>>; readonly masked_image: Array<unknown>; readonly output_sha256: string }
}

const file = JSON.parse(readFileSync(new URL("../../../test/fixtures/papo-golden.json", import.meta.url), "utf8")) as {
  cases: Array<MaskingCase & { category: string }>
}

export const maskingCases: ReadonlyArray<MaskingCase> = file.cases.filter((c) => c.category === "masking")

/** Nested `[H][W][C]` / `[H][W]` arrays as flat C-order values and their shape. */
export const flatten = (nested: Array<unknown>): { data: Array<number>; shape: Array<number> } => {
  const shape: Array<number> = []
  for (let a: unknown = nested; Array.isArray(a); a = a[0]) shape.push(a.length)
  return { data: (nested as Array<number>).flat(shape.length) as Array<number>, shape }
}
