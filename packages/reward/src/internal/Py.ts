/**
 * The few Python string semantics the reference graders rely on, so that the TypeScript port splits,
 * strips and matches exactly where Python does (Python's `str.isspace`, `str.strip`, `float()`).
 *
 * @internal
 */

/** Python's `str.isspace()` characters (also what `\s` matches in a `re` str pattern). */
export const PY_SPACE = "\t\n\u000b\u000c\r\u001c\u001d\u001e\u001f \u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"

const spaceSet = new Set(PY_SPACE)

/** `c.isspace()` for one character. */
export const isPySpace = (c: string | undefined): boolean => c !== undefined && spaceSet.has(c)

/** Python's `s.strip()` (JavaScript's `trim` strips a different set: it strips U+FEFF, not U+001C..U+001F). */
export const pyStrip = (s: string): string => {
  let a = 0
  let b = s.length
  while (a < b && spaceSet.has(s[a]!)) a++
  while (b > a && spaceSet.has(s[b - 1]!)) b--
  return a === 0 && b === s.length ? s : s.slice(a, b)
}

/** Python's `s.lstrip()`. */
export const pyLstrip = (s: string): string => {
  let a = 0
  while (a < s.length && spaceSet.has(s[a]!)) a++
  return s.slice(a)
}

/** A regex character class body (for use inside `[...]`) equal to Python's `\s`. */
export const PY_SPACE_CLASS = "\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"

const floatRe = /^[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?|\d(?:_?\d)*\.(?:[eE][+-]?\d(?:_?\d)*)?|inf(?:inity)?|nan)$/i

const ND = /\p{Nd}/u

/** The ASCII digit of a Unicode decimal digit (`int("７") == 7` in Python): its offset in its run of ten. */
const asciiDigit = (c: string): string => {
  const cp = c.codePointAt(0)!
  if (cp < 128) return c
  let start = cp
  while (start > 0 && ND.test(String.fromCodePoint(start - 1))) start--
  return String((cp - start) % 10)
}

/** Python's `float(s)` (None when it raises); Unicode decimal digits count, as in Python. */
export const pyFloat = (s: string): number | undefined => {
  const t = /[^\x00-\x7f]/.test(s) ? pyStrip(s).replace(/\p{Nd}/gu, asciiDigit) : pyStrip(s)
  if (!floatRe.test(t)) return undefined
  const lower = t.toLowerCase().replace(/_/g, "")
  if (lower.endsWith("inf") || lower.endsWith("infinity")) return lower.startsWith("-") ? -Infinity : Infinity
  if (lower.endsWith("nan")) return NaN
  return Number(lower)
}

/** `str(int(round(x)))` for a finite float (round half to even, like Python's `round`). */
export const pyRoundIntString = (x: number): string => {
  const f = Math.floor(x)
  const d = x - f
  let r = d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1
  if (Object.is(r, -0)) r = 0
  return BigInt(r).toString() // the double's exact integer value, as Python prints it
}

/** `str(int(x))` for a finite float: truncation toward zero, printed in full. */
export const pyIntString = (x: number): string => {
  return BigInt(Math.trunc(x)).toString() // the double's exact integer value, as Python prints it
}
