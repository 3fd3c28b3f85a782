#!/usr/bin/env node
/**
 * papo-conformance <file.json> [--backend auto|wasm|cpu|...] [--out results.json] [--timeout-ms N]
 *
 * Checks papo-ts against vectors computed with the official PAPO code (the `papo-golden.json` schema).
 * Prints `PASS name` / `FAIL name: ...` per case, ends with `N passed, N failed`, exits 1 if any failed.
 * A math-answer verifier corpus (detected by its `format` field) is graded in both reward modes instead:
 * one `FAIL id [mode]: expected …, got …` line per disagreement, agreement per source and category, and
 * with `--out` every case's answers as JSON.
 */
import { readFile, writeFile } from "node:fs/promises"
import { Backend, describe } from "@papo/backend"
import { Console, Data, Effect } from "effect"
import { parseArgs } from "./Cli.js"
import { formatResult, runGolden } from "./Conformance.js"
import { isGoldenFile } from "./Golden.js"
import { formatAgreement, isVerifierCorpus, runVerifierCorpus } from "./VerifierCorpus.js"

class InputError extends Data.TaggedError("InputError")<{ readonly file: string; readonly reason: string }> {}

const readJson = (file: string) =>
  Effect.tryPromise({
    try: async () => JSON.parse(await readFile(file, "utf8")) as unknown,
    catch: (e) => new InputError({ file, reason: e instanceof Error ? e.message : String(e) })
  })

const program = Effect.gen(function*() {
  const args = yield* parseArgs(process.argv.slice(2))
  const json = yield* readJson(args.file)
  if (isVerifierCorpus(json)) {
    const report = yield* Effect.promise(() => runVerifierCorpus(json, args.timeoutMs))
    for (const line of report.lines) yield* Console.log(line)
    for (const line of formatAgreement(report)) yield* Console.log(line)
    if (args.out !== undefined) {
      const out = args.out
      yield* Effect.tryPromise({
        try: () => writeFile(out, JSON.stringify(report.answers, null, 1) + "\n"),
        catch: (e) => new InputError({ file: out, reason: e instanceof Error ? e.message : String(e) })
      })
    }
    yield* Console.log(`${report.passed} passed, ${report.failed} failed`)
    return report.failed > 0 ? 1 : 0
  }
  if (!isGoldenFile(json)) {
    return yield* new InputError({ file: args.file, reason: "not a conformance file (expected schema_version and cases)" })
  }
  const backend = yield* Effect.gen(function*() { return yield* Backend }).pipe(Effect.provide(Backend.layer({ backend: args.backend, threads: 1 })))
  yield* Console.error(`backend: ${describe(backend)}`) // stderr: stdout is the PASS/FAIL lines and the count
  const results = yield* Effect.promise(() => runGolden(json))
  for (const r of results) yield* Console.log(formatResult(r))
  const failed = results.filter((r) => !r.passed).length
  yield* Console.log(`${results.length - failed} passed, ${failed} failed`)
  return failed > 0 ? 1 : 0
})

Effect.runPromise(
  program.pipe(
    Effect.catchTag("UsageError", (e) => (e.code === 0 ? Console.log(e.message) : Console.error(e.message)).pipe(Effect.as(e.code))),
    Effect.catchTag("InputError", (e) => Console.error(`${e.file}: ${e.reason}`).pipe(Effect.as(2))),
    Effect.catchTag("BackendError", (e) => Console.error(e.message).pipe(Effect.as(2)))
  )
).then((code) => {
  process.exitCode = code
})
