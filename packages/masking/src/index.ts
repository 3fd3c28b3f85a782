/**
 * @papo/masking: the masked views of an image that PAPO's implicit perception loss compares against
 * (Wang et al., arXiv 2507.06448). Pure, synchronous functions over typed arrays and tfjs tensors;
 * randomness is always an argument.
 *
 * @since 0.1.0
 */
export * from "./Image.js"
export * as Masking from "./Masking.js"
export * as Saliency from "./Saliency.js"
export * from "./TensorMasking.js"
