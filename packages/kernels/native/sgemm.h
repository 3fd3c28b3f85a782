// Blocked single-precision matrix product for the @papo/kernels addon (see README.md, "Design").
#pragma once
#include <cstddef>
#include <cstdint>

#include "rows.h"

namespace papo {

// C[b] (m × n, row stride ldc) = op(A[b]) · op(B[b]) (+ bias[j] on every row), for b < batch.
// op(A)(i, k) = a[b·a_batch + i·a_rs + k·a_cs]; op(B)(k, j) = b[b·b_batch + k·b_rs + j·b_cs]:
// the two strides express either transpose, and a batch stride of 0 broadcasts one matrix over the batch.
struct Gemm {
  int64_t batch, m, n, k;
  const float* a;
  int64_t a_batch, a_rs, a_cs;
  const float* b;
  int64_t b_batch, b_rs, b_cs;
  float* c;
  int64_t c_batch, ldc;
  const float* bias;  // n values or nullptr
  // An element-wise finish of C (batch 1 only), applied to each block of C once its last depth slice is
  // stored, while the block is in cache; see rows.h's Epilogue for the ops and the operands `e_in`, `e_out`
  // (dense row-major m × n like C, or nullptr).
  Epilogue epilogue = Epilogue::None;
  const float* e_in = nullptr;
  float* e_out = nullptr;
};

// The micro-kernel in use: "avx2-fma" or "generic".
const char* isa_name();
// Forces the generic micro-kernel (for tests of the fallback); returns the name now in use.
const char* force_generic();

// Runs `g` on up to `threads` threads (1 or 2). Each output element is computed by one thread with the same
// sequence of operations whatever the thread count, so results are bit-identical for any thread count.
void gemm(const Gemm& g, int threads);

}  // namespace papo
