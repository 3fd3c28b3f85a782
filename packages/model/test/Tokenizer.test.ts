import assert from "node:assert/strict"
import { test } from "node:test"
import fc from "fast-check"
import { Tokenizer } from "../src/index.js"

const tok = Tokenizer.make()

test("special tokens have fixed ids and win over their first character", () => {
  assert.deepEqual(tok.tokens.slice(0, 5), ["<pad>", "<eos>", "<think>", "</think>", "\\boxed{"])
  assert.deepEqual(Array.from(Tokenizer.encode(tok, "\\boxed{7}")), [4, tok.tokens.indexOf("7"), tok.tokens.indexOf("}")])
  assert.deepEqual(Array.from(Tokenizer.encode(tok, "<think>")), [2])
  assert.deepEqual(Array.from(Tokenizer.encode(tok, "<thin")), [..."<thin"].map((ch) => tok.tokens.indexOf(ch)))
})

test("decode ∘ encode is the identity on the vocabulary's characters", () => {
  const chars = tok.tokens.slice(2)
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...chars), { maxLength: 30 }), (parts) => {
      const s = parts.join("")
      assert.equal(Tokenizer.decode(tok, Tokenizer.encode(tok, s)), s)
    })
  )
})

test("an unknown character is refused until the tokenizer is extended; old ids never move", () => {
  assert.throws(() => Tokenizer.encode(tok, "3×4"), /character "×" at position 1 is not in the vocabulary/)
  const ext = Tokenizer.extend(tok, "3×4 ÷ ×")
  assert.equal(ext.tokens.length, tok.tokens.length + 2)
  assert.deepEqual(ext.tokens.slice(0, tok.tokens.length), tok.tokens)
  assert.equal(Tokenizer.decode(ext, Tokenizer.encode(ext, "3×4÷2")), "3×4÷2")
  assert.equal(Tokenizer.extend(ext, "12"), ext)
})

test("batches are left-padded with PAD; decode skips PAD and EOS; JSON round trip is checked", () => {
  const { ids, length } = Tokenizer.encodeBatch(tok, ["1", "12"])
  assert.equal(length, 2)
  assert.deepEqual(Array.from(ids), [0, 6, 6, 7])
  assert.throws(() => Tokenizer.encodeBatch(tok, ["123"], 2), /more than the length 2/)
  assert.equal(Tokenizer.decode(tok, [0, 0, 6, 1]), "1")
  assert.deepEqual(Tokenizer.fromJSON(JSON.parse(JSON.stringify(tok))), tok)
  assert.throws(() => Tokenizer.fromJSON({ tokens: ["a", "a"], padId: 0, eosId: 1 }), /duplicates/)
  assert.throws(() => Tokenizer.fromJSON({ tokens: ["a"], padId: 0, eosId: 3 }), /padId/)
})
