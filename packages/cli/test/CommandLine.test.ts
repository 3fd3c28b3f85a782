import assert from "node:assert/strict"
import { describe, it } from "node:test"
import { Cause, Effect, Exit, Option } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import fc from "fast-check"
import { CommandLine } from "../src/index.js"

const texts: CommandLine.Texts = {
  usage: "usage: tool <run|show> …",
  help: (path) => (path.length > 1 ? `help of ${path.join(" ")}` : "usage: tool <run|show> …")
}

interface Parsed {
  readonly command: string
  readonly input: unknown
}

const tool = (done: (p: Parsed) => Effect.Effect<void>) =>
  Command.make("tool").pipe(Command.withSubcommands([
    Command.make("run", {
      out: Flag.String("out").pipe(Flag.optional),
      level: Flag.Literals("level", ["low", "high"]).pipe(Flag.withDefault("low")),
      fast: Flag.Boolean("fast").pipe(Flag.withDefault(false)),
      overrides: CommandLine.overrides
    }, (input) => done({ command: "run", input })),
    Command.make("show", { file: Argument.String("file") }, (input) => done({ command: "show", input }))
  ]))

const run = (argv: ReadonlyArray<string>) => Effect.runSyncExit(CommandLine.parse(argv, texts, tool))
const parsed = (argv: ReadonlyArray<string>): Parsed => {
  const exit = run(argv)
  assert.ok(Exit.isSuccess(exit), `expected ${argv.join(" ")} to parse`)
  return exit.value
}
const usageError = (argv: ReadonlyArray<string>): CommandLine.UsageError => {
  const exit = run(argv)
  assert.ok(Exit.isFailure(exit), `expected ${argv.join(" ")} to be refused`)
  const e = Cause.squash(exit.cause)
  assert.ok(e instanceof CommandLine.UsageError)
  return e
}

describe("CommandLine.parse (effect/cli without @effect/platform-node)", () => {
  it("hands the handler its parsed input: flags in any order, --flag=value, overrides in order", () => {
    assert.deepEqual(parsed(["run", "a.b=1", "--out=x.json", "--fast", "c=2", "--level", "high"]), {
      command: "run",
      input: { out: Option.some("x.json"), level: "high", fast: true, overrides: ["a.b=1", "c=2"] }
    })
    assert.deepEqual(parsed(["show", "f.json"]), { command: "show", input: { file: "f.json" } })
  })

  it("help is the app's own text for the command asked about, with code 0", () => {
    for (const [argv, text] of [[["run", "--help"], "help of tool run"], [["show", "-h"], "help of tool show"], [["--help"], texts.usage]] as const) {
      const e = usageError(argv)
      assert.deepEqual([e.code, e.message], [0, text])
    }
  })

  it("a bad command line gives code 2, one reason line in the apps' wording, then the usage", () => {
    const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
      [[], texts.usage],
      [["fit"], `unknown command "fit"\n${texts.usage}`],
      [["run", "--slow"], `unexpected argument "--slow"\n${texts.usage}`],
      [["run", "--out"], `--out needs a value\n${texts.usage}`],
      [["run", "--level", "mid"], `--level needs "low" | "high", got "mid"\n${texts.usage}`],
      [["run", "stray"], `unexpected argument "stray"\n${texts.usage}`],
      [["show"], texts.usage],
      [["show", "a.json", "b.json"], `unexpected argument "b.json"\n${texts.usage}`]
    ]
    for (const [argv, message] of cases) {
      const e = usageError(argv)
      assert.deepEqual([e.code, e.message], [2, message], argv.join(" "))
    }
  })

  it("effect/cli's other built-in flags are off", () => {
    for (const flag of ["--version", "--wizard", "--completions", "--log-level"]) {
      assert.equal(usageError(["run", flag]).message, `unexpected argument "${flag}"\n${texts.usage}`)
    }
  })

  it("property: any key.path=value overrides come back as given, in order", () => {
    const key = fc.stringMatching(/^[a-z][a-zA-Z]{0,8}(\.[a-z][a-zA-Z]{0,8}){0,2}$/)
    const value = fc.stringMatching(/^[a-z0-9.,\[\] -]{0,10}$/)
    fc.assert(
      fc.property(fc.array(fc.tuple(key, value).map(([k, v]) => `${k}=${v}`), { maxLength: 6 }), (overrides) => {
        assert.deepEqual((parsed(["run", ...overrides]).input as { overrides: unknown }).overrides, overrides)
      }),
      { numRuns: 100 }
    )
  })
})
