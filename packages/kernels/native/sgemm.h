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
  // op(B) as pack_b() packed it for this product's m, n, k (batch 1, op(A)'s rows contiguous: a_cs = 1), or
  // nullptr: the product then reads these panels instead of packing B (b is not read), the same values in the
  // same order, so the same bits.
  const float* b_packed = nullptr;
};

// The micro-kernel in use: "avx2-fma" or "generic".
const char* isa_name();
// Forces the generic micro-kernel (for tests of the fallback); returns the name now in use.
const char* force_generic();

// Runs `g` on up to `threads` threads (1 or 2). Each output element is computed by one thread with the same
// sequence of operations whatever the thread count, so results are bit-identical for any thread count.
void gemm(const Gemm& g, int threads);

// A weight packed once for many products with it (a decode step's weights over a rollout): the floats pack_b()
// writes for op(B) of k × n, and the packing itself, exactly as gemm() packs B, slice by slice, for a product
// of m rows with op(A)'s rows contiguous (see Gemm::b_packed).
int64_t packed_floats(int64_t n, int64_t k);
void pack_b(int64_t m, int64_t n, int64_t k, const float* b, int64_t b_rs, int64_t b_cs, float* out);

// Whether gemm() cuts `g` into depth chunks (a deep reduction, summed chunk by chunk: gemm_part() cannot take it).
bool depth_chunked(const Gemm& g);

// The width of the micro-kernel's panels of B: gemm_part()'s column unit.
constexpr int64_t kPanelWidth = 16;

// Columns [j0, j1) of C (j0 a multiple of kPanelWidth) for batch 1, the whole depth, on the calling thread: the bits
// gemm() gives those columns on any thread count (not for a depth-chunked product).
void gemm_part(const Gemm& g, int64_t j0, int64_t j1);

}  // namespace papo
