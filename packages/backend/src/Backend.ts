/**
 * Choosing the TensorFlow.js backend.
 *
 * `auto` tries, in order, `@tensorflow/tfjs-node-gpu` (CUDA), `@tensorflow/tfjs-node` (native CPU),
 * the WebAssembly backend and the pure-JS `cpu` backend, and reports which one it chose and why the
 * others were skipped. The native packages are optional dependencies: where their install script could
 * not fetch libtensorflow (any machine without access to Google's storage), they are simply absent.
 *
 * On `wasm`, the matMul kernels are replaced by the native ones of `@papo/kernels` where its addon was
 * built (and `PAPO_NATIVE` is not `0`); {@link describe} names the path in use, or why native is off.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { Native, Wasm } from "@papo/kernels"

/**
 * The backends papo-ts knows how to load.
 *
 * @category models
 */
export type BackendName = "auto" | "tensorflow-gpu" | "tensorflow" | "wasm" | "cpu"

/**
 * Every accepted backend name, for validating a config.
 *
 * @category constructors
 */
export const backendNames: ReadonlyArray<BackendName> = ["auto", "tensorflow-gpu", "tensorflow", "wasm", "cpu"]

/**
 * What {@link initBackend} did: the tfjs backend now active and, for each candidate tried before it,
 * why it was skipped.
 *
 * @category models
 */
export interface BackendChoice {
  readonly requested: BackendName
  readonly name: Exclude<BackendName, "auto">
  /** The name tfjs itself reports (`tensorflow` for both native packages). */
  readonly tfBackend: string
  readonly skipped: ReadonlyArray<{ readonly name: Exclude<BackendName, "auto">; readonly reason: string }>
  /** On `wasm`: the native kernels of `@papo/kernels` in use, or why not; `null` on other backends. */
  readonly native: Native.Status | null
}

const order: ReadonlyArray<Exclude<BackendName, "auto">> = ["tensorflow-gpu", "tensorflow", "wasm", "cpu"]

const nativePackage = {
  "tensorflow-gpu": "@tensorflow/tfjs-node-gpu",
  tensorflow: "@tensorflow/tfjs-node"
} as const

const load = async (name: Exclude<BackendName, "auto">): Promise<string> => {
  switch (name) {
    case "tensorflow-gpu":
    case "tensorflow": {
      // A specifier in a variable keeps bundlers and tsc from resolving a package that may be absent.
      const spec: string = nativePackage[name]
      await import(spec)
      return "tensorflow"
    }
    case "wasm":
      await import("@tensorflow/tfjs-backend-wasm")
      Wasm.install()
      return "wasm"
    case "cpu":
      return "cpu"
  }
}

const firstLine = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split("\n")[0] ?? ""

/**
 * Loads and activates a backend. With `auto`, the first of tfjs-node-gpu, tfjs-node, wasm and cpu that
 * loads wins. A named backend that cannot load is an error whose message says why.
 *
 * Also silences tfjs's console banner suggesting tfjs-node (it is printed when `cpu` is used in Node).
 *
 * @example
 * const choice = await initBackend("cpu")
 * choice.name // => "cpu"
 *
 * @category constructors
 */
export const initBackend = async (requested: BackendName = "auto"): Promise<BackendChoice> => {
  if (!backendNames.includes(requested)) {
    throw new Error(`Unknown backend "${String(requested)}"; expected one of ${backendNames.join(", ")}`)
  }
  tf.env().set("PROD", true)
  const candidates = requested === "auto" ? order : [requested]
  const skipped: Array<{ name: Exclude<BackendName, "auto">; reason: string }> = []
  for (const name of candidates) {
    try {
      const tfBackend = await load(name)
      if (!(await tf.setBackend(tfBackend))) throw new Error(`tf.setBackend("${tfBackend}") returned false`)
      await tf.ready()
      return { requested, name, tfBackend, skipped, native: name === "wasm" ? Native.status() : null }
    } catch (e) {
      skipped.push({ name, reason: firstLine(e) })
    }
  }
  const why = skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")
  throw new Error(`No TensorFlow.js backend could be loaded for "${requested}" (${why})`)
}

/**
 * The one-line description of a backend choice that every run and bench prints: the backend, and on wasm
 * whether the native kernels are in use (micro-kernel, threads) or why not.
 *
 * @example
 * describe(await initBackend("cpu")) // => "cpu"
 * describe(await initBackend("wasm")) // => "wasm + native kernels (avx2-fma, 2 threads)" where the addon was built
 *
 * @category constructors
 */
export const describe = (choice: BackendChoice): string => {
  const n = choice.native
  if (n === null) return choice.name
  return n.available ? `${choice.name} + native kernels (${n.isa}, ${n.threads} threads)` : `${choice.name} (native kernels off: ${n.reason})`
}
