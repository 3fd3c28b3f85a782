// One decode step of causal attention over a KV cache, for the @papo/kernels addon.
#pragma once
#include <cstdint>
#include <memory>

namespace papo {

// For each of `rows` rows and `heads` heads (hd values each, d = heads·hd): stores the new key and value from
// qkv [rows, 3d] (q | k | v) at position `pos` of the caches k, v [rows·heads, capacity, hd], then writes
// softmax(q·kᵀ/√hd over positions 0…pos)·v to out [rows, d]. Scores, softmax and the weighted sum are in
// double; each row is computed by one thread whatever the thread count (bit-identical results).
struct Attend {
  int64_t rows, heads, hd, capacity, pos;
  const float* qkv;
  float* k;
  float* v;
  float* out;
};

void attend(const Attend& a, int threads);

// A rollout's decoder: the policy's weights packed once (pack_b, for `rows` rows: the packing a product does on
// every call, done once while the policy does not change), a KV cache of `capacity` positions per layer and the
// scratch, all owned; a step embeds one token per row, runs every block and the head (the final LayerNorm, then
// x·W_head) as one job on the thread pool, and writes the logits [rows, vocab]. The same kernels on the same
// values as the model's tfjs kernels under this addon (per block: LayerNorm, the products with their bias, the
// GELU and the residual adds in the store, attend()): the same bits, for any thread count.
struct DecoderShape {
  int64_t rows, heads, hd, d_mlp, layers, vocab, positions, capacity;
};

class Decoder {
 public:
  // `tensors`: per layer the block's twelve (ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc,
  // w_out, b_out; weights row-major [in, out]), then the final LayerNorm's γ and β, the head [d, vocab], the token
  // table [vocab, d] and the text positions [positions, d]; read here only.
  Decoder(const DecoderShape& s, const float* const* tensors);
  // Stores layer `layer`'s keys and values from a pass over `prompts` sequences of `length` positions (row
  // (p, t) of k at k + (p·length + t)·k_ld, likewise v), prompt p for the rows p·group … p·group + group − 1,
  // and sets the cache's length.
  void fill(int64_t layer, const float* k, int64_t k_ld, const float* v, int64_t v_ld, int64_t prompts, int64_t length, int64_t group);
  // One step for the tokens `ids` [rows] at text position `offset`: the logits to `logits` [rows, vocab], the
  // new keys and values at the cache's length, which grows by one. Returns an error, or nullptr.
  const char* step(const int32_t* ids, int64_t offset, float* logits, int threads);
  ~Decoder();

  const DecoderShape shape;
  int64_t length = 0;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace papo
