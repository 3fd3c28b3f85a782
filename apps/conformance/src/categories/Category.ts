/**
 * A category runner computes a case's outputs from its hyperparameters and inputs alone, with the
 * project's own functions, in the JSON shape of the golden file.
 */
export type CategoryRunner = (
  hyperparameters: Readonly<Record<string, unknown>>,
  inputs: Readonly<Record<string, unknown>>
) => unknown | Promise<unknown>

/** Reads a required field, with an error that names it. */
export const field = <T>(o: Readonly<Record<string, unknown>>, key: string): T => {
  if (!(key in o)) throw new Error(`missing field "${key}"`)
  return o[key] as T
}
