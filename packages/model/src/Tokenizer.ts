/**
 * A character-level tokenizer with a few multi-character special tokens, saved with the model.
 *
 * Ids 0 … 4 are the specials `<pad>`, `<eos>`, `<think>`, `</think>`, `\boxed{`; then the base characters
 * (digits, letters, space, newline, operators and punctuation, `}` included), then any characters added by
 * {@link extend}. Encoding is greedy longest-match: a special wins over its first character.
 *
 * @since 0.1.0
 */

/**
 * The vocabulary: `tokens[id]` is the text of token `id`.
 *
 * @category models
 */
export interface Tokenizer {
  readonly tokens: ReadonlyArray<string>
  readonly padId: number
  readonly eosId: number
}

/**
 * The special tokens, in id order.
 *
 * @category constructors
 */
export const specialTokens: ReadonlyArray<string> = ["<pad>", "<eos>", "<think>", "</think>", "\\boxed{"]

const baseChars =
  "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ \n+-*/=()<>.,:;?!'\"[]{}|^%_#@&$~`\\"

/**
 * The built-in tokenizer, optionally extended with the characters of `extraText`.
 *
 * @example
 * const tok = make()
 * decode(tok, encode(tok, "<think>2+3</think>\\boxed{5}")) // => "<think>2+3</think>\\boxed{5}"
 *
 * @category constructors
 */
export const make = (extraText = ""): Tokenizer => extend({ tokens: [...specialTokens, ...baseChars], padId: 0, eosId: 1 }, extraText)

/**
 * Adds every character of `text` not yet in the vocabulary (in order of first appearance). New ids are
 * appended, so existing ids never change.
 *
 * @category constructors
 */
export const extend = (tok: Tokenizer, text: string): Tokenizer => {
  const known = new Set(tok.tokens)
  const added: Array<string> = []
  for (const ch of text) {
    if (!known.has(ch)) {
      known.add(ch)
      added.push(ch)
    }
  }
  return added.length === 0 ? tok : { ...tok, tokens: [...tok.tokens, ...added] }
}

const indexOf = (tok: Tokenizer): Map<string, number> => new Map(tok.tokens.map((t, i) => [t, i]))

/**
 * Text → ids. Throws on a character the vocabulary lacks (naming it and its position).
 *
 * @example
 * encode(make(), "12")  // => Int32Array [6, 7]
 *
 * @category math
 */
export const encode = (tok: Tokenizer, text: string): Int32Array => {
  const index = indexOf(tok)
  const multi = tok.tokens.filter((t) => [...t].length > 1).sort((a, b) => b.length - a.length)
  const out: Array<number> = []
  let i = 0
  while (i < text.length) {
    const special = multi.find((m) => text.startsWith(m, i))
    if (special !== undefined) {
      out.push(index.get(special)!)
      i += special.length
      continue
    }
    const ch = String.fromCodePoint(text.codePointAt(i)!)
    const id = index.get(ch)
    if (id === undefined) {
      throw new Error(`Tokenizer: character ${JSON.stringify(ch)} at position ${i} is not in the vocabulary (extend the tokenizer with the dataset's text)`)
    }
    out.push(id)
    i += ch.length
  }
  return Int32Array.from(out)
}

/**
 * Ids → text, skipping PAD and EOS.
 *
 * @category math
 */
export const decode = (tok: Tokenizer, ids: ArrayLike<number>): string => {
  let s = ""
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!
    if (id === tok.padId || id === tok.eosId) continue
    const t = tok.tokens[id]
    if (t === undefined) throw new Error(`Tokenizer: id ${id} is outside the vocabulary of ${tok.tokens.length}`)
    s += t
  }
  return s
}

/**
 * Encodes texts left-padded with PAD to a common `length` (default: the longest), as a row-major
 * `[texts.length, length]` array for a `promptIds` tensor. Throws if a text is longer than `length`.
 *
 * @example
 * encodeBatch(make(), ["1", "12"]) // => { ids: Int32Array [0, 6, 6, 7], length: 2 }
 *
 * @category math
 */
export const encodeBatch = (tok: Tokenizer, texts: ReadonlyArray<string>, length?: number): { readonly ids: Int32Array; readonly length: number } => {
  const enc = texts.map((t) => encode(tok, t))
  const len = length ?? Math.max(1, ...enc.map((e) => e.length))
  const ids = new Int32Array(texts.length * len).fill(tok.padId)
  enc.forEach((e, r) => {
    if (e.length > len) throw new Error(`Tokenizer: text ${r} has ${e.length} tokens, more than the length ${len}`)
    ids.set(e, r * len + len - e.length)
  })
  return { ids, length: len }
}

/**
 * Checks a tokenizer read from JSON (unique tokens, PAD and EOS in range).
 *
 * @category constructors
 */
export const fromJSON = (json: unknown): Tokenizer => {
  const o = json as Partial<Tokenizer> | null
  if (o === null || typeof o !== "object" || !Array.isArray(o.tokens) || !o.tokens.every((t) => typeof t === "string" && t.length > 0)) {
    throw new Error("Tokenizer: JSON must have a non-empty string array `tokens`")
  }
  if (new Set(o.tokens).size !== o.tokens.length) throw new Error("Tokenizer: `tokens` has duplicates")
  const inRange = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0 && x < o.tokens!.length
  if (!inRange(o.padId) || !inRange(o.eosId)) throw new Error("Tokenizer: `padId` and `eosId` must be ids of the vocabulary")
  return { tokens: o.tokens, padId: o.padId, eosId: o.eosId }
}
