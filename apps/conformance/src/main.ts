#!/usr/bin/env node
/**
 * papo-conformance <file.json> [--backend auto|wasm|cpu|...]
 *
 * Checks papo-ts against vectors computed with the official PAPO code (the `papo-golden.json` schema).
 * Prints `PASS name` / `FAIL name: ...` per case, ends with `N passed, N failed`, exits 1 if any failed.
 */
import { readFile } from "node:fs/promises"
import { type BackendName, backendNames, initBackend } from "@papo/backend"
import { Console, Data, Effect } from "effect"
import { formatResult, runGolden } from "./Conformance.js"
import { isGoldenFile } from "./Golden.js"

class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}
class InputError extends Data.TaggedError("InputError")<{ readonly file: string; readonly reason: string }> {}

const usage = "usage: npm run conformance -- <file.json> [--backend auto|tensorflow-gpu|tensorflow|wasm|cpu]"

const parseArgs = (argv: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    let file: string | undefined
    let backend: BackendName = "auto"
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i]!
      if (a === "--backend") {
        const b = argv[++i]
        if (b === undefined || !backendNames.includes(b as BackendName)) {
          return yield* new UsageError({ message: `--backend needs one of ${backendNames.join(", ")}` })
        }
        backend = b as BackendName
      } else if (a === "--help" || a === "-h") {
        return yield* new UsageError({ message: usage })
      } else if (file === undefined) file = a
      else return yield* new UsageError({ message: `unexpected argument "${a}"\n${usage}` })
    }
    if (file === undefined) return yield* new UsageError({ message: usage })
    return { file, backend }
  })

const readJson = (file: string) =>
  Effect.tryPromise({
    try: async () => JSON.parse(await readFile(file, "utf8")) as unknown,
    catch: (e) => new InputError({ file, reason: e instanceof Error ? e.message : String(e) })
  })

const program = Effect.gen(function*() {
  const args = yield* parseArgs(process.argv.slice(2))
  const json = yield* readJson(args.file)
  if (!isGoldenFile(json)) {
    return yield* new InputError({ file: args.file, reason: "not a conformance file (expected schema_version and cases)" })
  }
  yield* Effect.promise(() => initBackend(args.backend))
  const results = yield* Effect.promise(() => runGolden(json))
  for (const r of results) yield* Console.log(formatResult(r))
  const failed = results.filter((r) => !r.passed).length
  yield* Console.log(`${results.length - failed} passed, ${failed} failed`)
  return failed > 0 ? 1 : 0
})

Effect.runPromise(
  program.pipe(
    Effect.catchTag("UsageError", (e) => Console.error(e.message).pipe(Effect.as(2))),
    Effect.catchTag("InputError", (e) => Console.error(`${e.file}: ${e.reason}`).pipe(Effect.as(2)))
  )
).then((code) => {
  process.exitCode = code
})
