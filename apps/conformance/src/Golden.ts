/**
 * The conformance-vector format of `papo-golden.json` (schema_version 1) and its comparison rule.
 *
 * @since 0.1.0
 */

/** One case of a golden file: inputs and hyperparameters in, the reference's outputs to match. */
export interface GoldenCase {
  readonly name: string
  readonly category: string
  readonly reference: string
  readonly description: string
  readonly hyperparameters: Readonly<Record<string, unknown>>
  readonly inputs: Readonly<Record<string, unknown>>
  readonly outputs: Readonly<Record<string, unknown>>
}

/** A whole golden file. */
export interface GoldenFile {
  readonly schema_version: number
  readonly tolerance: { readonly abs: number; readonly rel: number }
  readonly cases: ReadonlyArray<GoldenCase>
}

/** Tells a golden file apart from other JSON (for example the verifier corpus). */
export const isGoldenFile = (u: unknown): u is GoldenFile =>
  typeof u === "object" && u !== null && "schema_version" in u && "cases" in u && Array.isArray(u.cases)

/** One place where an actual output differs from the expected one. */
export interface Difference {
  readonly path: string
  readonly message: string
  /** |actual − expected| for numbers, else NaN. */
  readonly by: number
}

const kind = (u: unknown): string => (u === null ? "null" : Array.isArray(u) ? "array" : typeof u)

/**
 * Walks `expected` and collects every difference: objects must have the same key set, arrays the same
 * length, numbers must satisfy |a − e| ≤ abs + rel·|e|, and everything else must be identical.
 */
export const compare = (
  actual: unknown,
  expected: unknown,
  tol: { readonly abs: number; readonly rel: number },
  path = ""
): Array<Difference> => {
  const at = path === "" ? "(root)" : path
  if (typeof expected === "number") {
    if (typeof actual !== "number") return [{ path: at, message: `expected number, got ${kind(actual)}`, by: NaN }]
    const by = Math.abs(actual - expected)
    return by <= tol.abs + tol.rel * Math.abs(expected) && Number.isFinite(actual)
      ? []
      : [{ path: at, message: `expected ${expected}, got ${actual}`, by }]
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return [{ path: at, message: `expected array, got ${kind(actual)}`, by: NaN }]
    if (actual.length !== expected.length) {
      return [{ path: at, message: `expected length ${expected.length}, got ${actual.length}`, by: NaN }]
    }
    return expected.flatMap((e, i) => compare(actual[i], e, tol, `${path}[${i}]`))
  }
  if (typeof expected === "object" && expected !== null) {
    if (typeof actual !== "object" || actual === null || Array.isArray(actual)) {
      return [{ path: at, message: `expected object, got ${kind(actual)}`, by: NaN }]
    }
    const ek = Object.keys(expected).sort()
    const ak = Object.keys(actual).sort()
    const missing = ek.filter((k) => !ak.includes(k))
    const extra = ak.filter((k) => !ek.includes(k))
    if (missing.length + extra.length > 0) {
      return [{ path: at, message: `keys differ: missing [${missing.join(", ")}], extra [${extra.join(", ")}]`, by: NaN }]
    }
    return ek.flatMap((k) =>
      compare((actual as Record<string, unknown>)[k], (expected as Record<string, unknown>)[k], tol, path ? `${path}.${k}` : k)
    )
  }
  return actual === expected ? [] : [{ path: at, message: `expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`, by: NaN }]
}
