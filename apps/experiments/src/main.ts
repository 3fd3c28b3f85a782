#!/usr/bin/env node
/**
 * papo-experiment <study | file.yaml> [--fresh] [--backend auto|wasm|cpu|...] [key.path=value ...]
 *
 * Runs a study (apps/experiments/studies/<study>.yaml): the SFT warm start, every arm from it, the
 * held-out evaluation, then writes runs/<study>/report.html and prints the comparison table.
 * `npm start` runs the `compare` study (GRPO vs PAPO-G on the cued-digit task, sixteen seeds, one shared warm start).
 * Overrides apply to every run of the study, e.g. `trainer.maxSteps=10`.
 */
import { readdir } from "node:fs/promises"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { ConfigLoad } from "@papo/trainer"
import { Console, Effect } from "effect"
import { parseArgs } from "./Cli.js"
import { backendsText, formatTable, verdicts, writeReport } from "./Report.js"
import { runStudy, StudyFileError } from "./Runner.js"
import * as Study from "./Study.js"

const studiesDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "studies")

const program = Effect.gen(function*() {
  const available = (yield* Effect.tryPromise({
    try: () => readdir(studiesDir),
    catch: (e) => new StudyFileError({ path: studiesDir, reason: `cannot list the studies: ${String(e)}` })
  })).filter((f) => f.endsWith(".yaml")).map((f) => f.slice(0, -5))
  const parsed = yield* Effect.result(parseArgs(process.argv.slice(2), available))
  if (parsed._tag === "Failure") {
    const usage = parsed.failure
    yield* usage.code === 0 ? Console.log(usage.message) : Console.error(usage.message)
    return usage.code
  }
  const args = parsed.success
  const backend = args.backend
  const overrides = yield* ConfigLoad.parseOverrides([...args.overrides, `trainer.backend=${backend}`])
  const plan = yield* Study.load(args.study, studiesDir, { outputDir: "runs", overrides })
  yield* Console.log(`study ${plan.name}: ${plan.spec.description}\n${plan.runs.length} runs (seeds ${plan.spec.seeds.join(", ")}); results in runs/${plan.name}/`)
  const result = yield* runStudy(plan, { fresh: args.fresh, backend })
  const dir = join("runs", plan.name)
  const path = yield* Effect.tryPromise({
    try: () => writeReport(dir, result),
    catch: (e) => new StudyFileError({ path: dir, reason: `cannot write the report: ${e instanceof Error ? e.message : String(e)}` })
  })
  yield* Console.log(`\n${formatTable(result)}\n\n${verdicts(result).join("\n")}\n\nbackend: ${backendsText(result)}\nreport: ${path} (${(result.seconds / 60).toFixed(1)} minutes)`)
  return 0
})

Effect.runPromise(
  program.pipe(
    Effect.catchTag("StudyError", (e) => Console.error(e.message).pipe(Effect.as(2))),
    Effect.catchTag("ConfigError", (e) => Console.error(e.message).pipe(Effect.as(2))),
    // A run failed or finished incomplete, or a file could not be read or written: the study stops, exit 1.
    // Each of these errors names the run or the file (RunFailedError, RunIncompleteError, StudyFileError, RunError).
    Effect.catch((e) => Console.error(`the study stopped: ${e.message}`).pipe(Effect.as(1)))
  )
).then((code) => {
  process.exitCode = code
})
