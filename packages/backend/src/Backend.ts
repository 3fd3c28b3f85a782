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
 * For Effect programs the backend is a service: {@link Backend.layer} loads it from a run's settings and
 * its value is what actually loaded (a {@link BackendChoice} with the run's thread count), so a run can
 * record the backend that ran rather than the one it asked for.
 *
 * @since 0.1.0
 */
import * as tf from "@tensorflow/tfjs"
import { Native, Wasm } from "@papo/kernels"
import { Context, Data, Effect, Layer } from "effect"

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
 * No backend could be loaded: the one asked for, and why each candidate failed (an unknown name has no
 * candidates).
 *
 * @example
 * new BackendError({ requested: "wasm", skipped: [{ name: "wasm", reason: "no SIMD" }] }).message
 * // => 'No TensorFlow.js backend could be loaded for "wasm" (wasm: no SIMD)'
 *
 * @category errors
 */
export class BackendError extends Data.TaggedError("BackendError")<{
  readonly requested: string
  readonly skipped: ReadonlyArray<{ readonly name: string; readonly reason: string }>
}> {
  override get message(): string {
    if (!(backendNames as ReadonlyArray<string>).includes(this.requested)) {
      return `Unknown backend "${this.requested}"; expected one of ${backendNames.join(", ")}`
    }
    const why = this.skipped.map((s) => `${s.name}: ${s.reason}`).join("; ")
    return `No TensorFlow.js backend could be loaded for "${this.requested}" (${why})`
  }
}

/** Tries the candidates in order; the choice, or the error that says why none loaded. */
const choose = async (requested: BackendName): Promise<BackendChoice | BackendError> => {
  if (!backendNames.includes(requested)) return new BackendError({ requested: String(requested), skipped: [] })
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
  return new BackendError({ requested, skipped })
}

/**
 * Loads and activates a backend. With `auto`, the first of tfjs-node-gpu, tfjs-node, wasm and cpu that
 * loads wins. A named backend that cannot load is rejected with a {@link BackendError} that says why.
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
  const chosen = await choose(requested)
  if (chosen instanceof BackendError) throw chosen
  return chosen
}

/**
 * Whether a second model replica on a worker thread pays on this backend: not under the native matMul
 * kernels, which already use both cores inside each kernel (the rule `@papo/model`'s `Parallel.pays`
 * applies to the active backend).
 *
 * @example
 * replicaPays(await initBackend("cpu")) // => true
 * replicaPays(await initBackend("wasm")) // => false where the native kernels are in use
 *
 * @category constructors
 */
export const replicaPays = (choice: BackendChoice): boolean => choice.native?.available !== true

/**
 * What the {@link Backend} service holds: the backend that loaded, the model threads the run asked for
 * (`trainer.threads`) and the model replicas that run on them (2 only where {@link replicaPays}).
 *
 * @category models
 */
export interface LoadedBackend extends BackendChoice {
  readonly threads: number
  readonly replicas: number
}

/**
 * The tfjs backend of an Effect program, as a service whose value is what actually loaded.
 *
 * @example
 * const program = Effect.gen(function*() { return yield* Backend })
 * const loaded = await Effect.runPromise(program.pipe(Effect.provide(Backend.layer({ backend: "cpu", threads: 1 }))))
 * loaded.name // => "cpu"
 *
 * @category services
 */
export class Backend extends Context.Service<Backend, LoadedBackend>()("@papo/backend/Backend") {
  /**
   * Loads the backend a run's settings name (`trainer.backend`, `trainer.threads`); fails with a
   * {@link BackendError} when none loads.
   */
  static readonly layer = (settings: { readonly backend: BackendName; readonly threads: number }): Layer.Layer<Backend, BackendError> =>
    Layer.effect(
      Backend,
      Effect.promise(() => choose(settings.backend)).pipe(
        Effect.flatMap((chosen) =>
          chosen instanceof BackendError
            ? Effect.fail(chosen)
            : Effect.succeed(Backend.of({ ...chosen, threads: settings.threads, replicas: settings.threads >= 2 && replicaPays(chosen) ? 2 : 1 }))
        )
      )
    )
}

/**
 * The one-line description of a backend choice that every run and bench prints: the backend, on wasm
 * whether the native kernels are in use (micro-kernel, threads) or why not, and for a loaded
 * {@link Backend} running two model replicas (one per thread), that.
 *
 * @example
 * describe(await initBackend("cpu")) // => "cpu"
 * describe(await initBackend("wasm")) // => "wasm + native kernels (avx2-fma, 2 threads)" where the addon was built
 * describe({ ...(await initBackend("cpu")), threads: 2, replicas: 2 }) // => "cpu, model on 2 threads"
 *
 * @category constructors
 */
export const describe = (choice: BackendChoice | LoadedBackend): string => {
  const n = choice.native
  const what = n === null
    ? choice.name
    : n.available ? `${choice.name} + native kernels (${n.isa}, ${n.threads} threads)` : `${choice.name} (native kernels off: ${n.reason})`
  return "replicas" in choice && choice.replicas > 1 ? `${what}, model on ${choice.replicas} threads` : what
}
