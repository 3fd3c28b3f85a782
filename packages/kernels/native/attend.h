// One decode step of causal attention over a KV cache, for the @papo/kernels addon.
#pragma once
#include <cstdint>

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

}  // namespace papo
