// Fused causal self-attention over whole sequences, forward and backward, for the @papo/kernels addon (see
// README.md, "Fused attention"): one kernel each way in place of the head transposes, the batched matMuls and
// the softmax (and, backward, their gradients) that tfjs would chain.
#pragma once
#include <cstdint>

namespace papo {

// N sequences of T positions, H heads of hd values (d = H·hd). Row (n, i) of q, k and v starts at
// q + (n·T + i)·ld_in, and head h's values are the hd floats from column h·hd on (so a fused [N·T, 3d]
// q | k | v is read in place with ld_in = 3d); o and dO are [N·T, ld_o] alike, dq, dk, dv [N·T, ld_grad].
// Per (n, h), with Q = q·(1/√hd):
//   forward:  P = causal softmax(Q·Kᵀ) (row i over columns j ≤ i: the bits of rows.h's softmax_row),  o = P·V;
//             P is also written to probs [N, H, T, T] when probs is not null
//   backward: from the forward's P in probs, dV = Pᵀ·dO, dS = softmax_grad_row(P, dO·Vᵀ),
//             dq = (dS·K)·(1/√hd), dK = dSᵀ·Q
// Each (n, h) pair is computed whole by one thread, with the same operations whatever the thread count, so
// results are bit-identical for any thread count.
struct Attention {
  int64_t n, t, heads, hd;
  const float *q, *k, *v;
  int64_t ld_in;
  const float* d_out;  // backward only
  float* out;          // forward only
  int64_t ld_o;
  float *dq, *dk, *dv;  // backward only
  int64_t ld_grad;
  float* probs;  // forward: optional output; backward: input
};

void attention_forward(const Attention& a, int threads);
void attention_backward(const Attention& a, int threads);

}  // namespace papo
