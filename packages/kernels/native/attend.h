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

// One decode step of a pre-LayerNorm transformer block for `rows` new tokens (d = heads·hd), in place:
//   a = LN₁(x);  qkv = a·W_qkv + b_qkv;  a = attend(qkv) (k, v stored at `pos`);  x = x + (a·W_o + b_o);
//   a = LN₂(x);  h = gelu(a·W_fc + b_fc);  x = x + (h·W_out + b_out).
// Every product is one gemm() call, the GELU and the residual adds in its store (sgemm.h's epilogues), every
// LayerNorm one rows() call: the same operations, in the same order, as the model's tfjs kernels under this addon (bit-identical to
// that path, and for any thread count). Weights are row-major [in, out]; a, y [rows, d], qkv [rows, 3d] and
// h [rows, d_mlp] are scratch.
struct DecodeLayer {
  int64_t rows, heads, hd, d_mlp, capacity, pos;
  float* x;
  float* a;
  float* qkv;
  float* h;
  float* y;
  const float *ln1_g, *ln1_b, *w_qkv, *b_qkv, *w_o, *b_o, *ln2_g, *ln2_b, *w_fc, *b_fc, *w_out, *b_out;
  float* k;
  float* v;
};

void decode_layer(const DecodeLayer& l, int threads);

}  // namespace papo
