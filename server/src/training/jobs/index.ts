export { createJobManager } from "./job-manager.js";
export type { JobManager, JobManagerOptions, JobViewer } from "./job-manager.js";
export { TrainJob } from "./train-job.js";
export { parseJobSpec } from "./job-spec.js";
export type { JobSpec } from "./job-spec.js";
export type { DecodedChunk } from "./job-data.js";
export { createMemoryJobStore } from "./job-store.js";
export type { JobStore } from "./job-store.js";
