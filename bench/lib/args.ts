/** The command line of a bench: `bench/<name>.ts [small|medium ...] [--flag value ...] [--switch ...]`. */
export const args = process.argv.slice(2)

/** The number after `--name` on the command line, or `def`. */
export const flag = (name: string, def: number): number => {
  const i = args.indexOf(name)
  return i >= 0 ? Number(args[i + 1]) : def
}

/** The configs named on the command line, in order. */
export const names = args.filter((a) => a === "small" || a === "medium") as Array<"small" | "medium">
