/**
 * Loading a trainer config: a YAML file, dotted command-line overrides, the preset under them, then
 * validation against the schema in Config.ts. Every problem is reported at once, each naming its dotted
 * key and what was expected, with a did-you-mean hint for a near miss, a snake_case EasyR1 key or the
 * other name of a setting (`lossAggMode` for `lossAvgMode`).
 *
 * @since 0.1.0
 */
import { readFile } from "node:fs/promises"
import { Data, Effect, Schema, SchemaIssue } from "effect"
import * as YAML from "yaml"
import { Config, defaultConfig } from "./Config.js"
import { deepMerge, isMapping, type PartialConfig, type PresetName, presetNames, presets } from "./Presets.js"

/**
 * A config that cannot be used: each problem names the key (dotted path) and what was expected.
 *
 * @category errors
 */
export class ConfigError extends Data.TaggedError("ConfigError")<{
  readonly source: string
  readonly problems: ReadonlyArray<string>
}> {
  override get message(): string {
    return `invalid config (${this.source}):\n${this.problems.map((p) => `  - ${p}`).join("\n")}`
  }
}

const editDistance = (a: string, b: string): number => {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) d[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
  }
  return d[a.length]![b.length]!
}

/**
 * Names a setting has elsewhere, mapped to the one this config uses: verl's and `@papo/loss`'s
 * `lossAggMode` is EasyR1's `loss_avg_mode`, spelled `lossAvgMode` here.
 */
const otherNames: Readonly<Record<string, string>> = { lossAggMode: "lossAvgMode" }

const camelCase = (k: string): string => k.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase())

/** The key `k` most likely meant among `choices`: its other name, its camelCase, or one within two edits. */
const nearestKey = (k: string, choices: ReadonlyArray<string>): string | undefined => {
  const candidates = [otherNames[k], camelCase(k)].filter((c): c is string => c !== undefined && c !== k)
  return candidates.find((c) => choices.includes(c)) ??
    choices.find((c) => editDistance(c.toLowerCase(), k.toLowerCase()) <= 2)
}

/** Every key of `input` that the defaults (the full key tree) do not have, with the valid choices. */
const unknownKeys = (input: PartialConfig, known: PartialConfig, prefix = ""): Array<string> =>
  Object.entries(input).flatMap(([k, v]) => {
    const path = prefix + k
    if (!(k in known)) {
      const choices = Object.keys(known)
      const near = nearestKey(k, choices)
      return [
        `unknown key "${path}"${near !== undefined ? ` (did you mean "${prefix}${near}"?)` : ""}; valid keys${
          prefix ? ` in ${prefix.slice(0, -1)}` : ""
        }: ${choices.join(", ")}`
      ]
    }
    const sub = known[k]
    if (isMapping(sub)) {
      return isMapping(v) ? unknownKeys(v, sub, `${path}.`) : [`"${path}" must be a section (a mapping), got ${JSON.stringify(v)}`]
    }
    return []
  })

/**
 * Parses dotted overrides (`a.b=value`; the value is read as YAML, so `0.02`, `true`, `[0.9, 0.99]`
 * and bare strings work) into a partial config.
 *
 * @example
 * parseOverrides(["algorithm.klPrcpCoef=0.02"]) // => { algorithm: { klPrcpCoef: 0.02 } }
 *
 * @category configuration
 */
export const parseOverrides = (args: ReadonlyArray<string>): Effect.Effect<PartialConfig, ConfigError> =>
  Effect.gen(function*() {
    let out: PartialConfig = {}
    const problems: Array<string> = []
    for (const arg of args) {
      const eq = arg.indexOf("=")
      if (eq <= 0) {
        problems.push(`override "${arg}" is not of the form key.path=value`)
        continue
      }
      const path = arg.slice(0, eq).split(".")
      const raw = arg.slice(eq + 1)
      let value: unknown = raw
      try {
        value = raw === "" ? "" : YAML.parse(raw)
      } catch {
        value = raw
      }
      const nested = path.reduceRight<unknown>((acc, k) => ({ [k]: acc }), value) as PartialConfig
      out = deepMerge(out, nested)
    }
    if (problems.length) return yield* new ConfigError({ source: "command line", problems })
    return out
  })

/**
 * One line per schema issue: the dotted key, what was expected, and the value given.
 *
 * @example
 * schemaProblems(issue, { trainer: { maxSteps: -1 } }) // => ['"trainer.maxSteps": Expected a value greater than or equal to 1, got -1']
 *
 * @category errors
 */
export const schemaProblems = (issue: SchemaIssue.Issue, input: unknown): Array<string> =>
  SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues.map((i) => {
    const path = (i.path ?? []).map((p) => (typeof p === "object" ? String(p.key) : String(p))).join(".")
    const got = path.split(".").reduce<unknown>((o, k) => (isMapping(o) || Array.isArray(o) ? (o as any)[k] : undefined), input)
    return `"${path}": ${i.message}${got === undefined ? "" : `, got ${JSON.stringify(got)}`}`
  })

/**
 * Validates a partial config (already merged from its sources) and fills every default. The preset
 * named by `preset` goes under the given values.
 *
 * @category configuration
 */
export const resolveConfig = (input: unknown, source = "config"): Effect.Effect<Config, ConfigError> =>
  Effect.gen(function*() {
    if (!isMapping(input)) return yield* new ConfigError({ source, problems: ["the config must be a mapping"] })
    const unknown = unknownKeys(input, defaultConfig as unknown as PartialConfig)
    if (unknown.length) return yield* new ConfigError({ source, problems: unknown })
    const presetName = input["preset"] ?? "grpo"
    if (!(presetNames as ReadonlyArray<unknown>).includes(presetName)) {
      return yield* new ConfigError({
        source,
        problems: [`"preset": ${JSON.stringify(presetName)} is not a preset; valid: ${presetNames.join(", ")}`]
      })
    }
    const merged = deepMerge(presets[presetName as PresetName], input)
    return yield* Schema.decodeUnknownEffect(Config)(merged, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) => {
        return new ConfigError({ source, problems: schemaProblems(e.issue, merged) })
      })
    )
  })

/**
 * Loads a config: optional YAML file, then dotted overrides, then validation.
 *
 * @category configuration
 */
export const loadConfig = (
  options: { readonly file?: string | undefined; readonly overrides?: ReadonlyArray<string> | undefined }
): Effect.Effect<Config, ConfigError> =>
  Effect.gen(function*() {
    let fromFile: unknown = {}
    const file = options.file
    if (file !== undefined) {
      const text = yield* Effect.tryPromise({
        try: () => readFile(file, "utf8"),
        catch: (e) => new ConfigError({ source: file, problems: [`cannot read: ${(e as Error).message}`] })
      })
      fromFile = yield* Effect.try({
        try: () => YAML.parse(text) ?? {},
        catch: (e) => new ConfigError({ source: file, problems: [`not valid YAML: ${(e as Error).message.split("\n")[0]}`] })
      })
      if (!isMapping(fromFile)) return yield* new ConfigError({ source: file, problems: ["the file must hold a YAML mapping"] })
    }
    const overrides = yield* parseOverrides(options.overrides ?? [])
    const source = [file, (options.overrides ?? []).length ? "command line" : undefined].filter(Boolean).join(" + ") ||
      "defaults"
    return yield* resolveConfig(deepMerge(fromFile as PartialConfig, overrides), source)
  })
