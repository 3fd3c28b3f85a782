/**
 * @papo/backend: picks the fastest TensorFlow.js backend that loads on this machine.
 *
 * @since 0.1.0
 */
export * from "./Backend.js"
