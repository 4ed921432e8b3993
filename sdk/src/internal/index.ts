// Building blocks shared with @aiaas/server; not part of the SDK's public API and free to change.
export { createAsyncQueue } from "./async-queue.js";
export type { AsyncQueue } from "./async-queue.js";
