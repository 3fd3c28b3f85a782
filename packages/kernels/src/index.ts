/**
 * @papo/kernels: native CPU kernels (a blocked AVX2/FMA SGEMM on two threads) for TensorFlow.js's wasm backend.
 *
 * @since 0.1.0
 */
export * as Native from "./Native.js"
export * as Wasm from "./Wasm.js"
