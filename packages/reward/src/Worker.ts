/**
 * The module each `Pool` worker thread runs: the synchronous grader behind the pool's protocol. Not part
 * of the public API.
 *
 * @internal
 */
import { handle, serve } from "./internal/Serve.js"

serve(handle)
