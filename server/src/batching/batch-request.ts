import type { HostTensor } from "../runtime/index.js";

/** A request that passed validation and waits for a batch. */
export interface BatchRequest {
  /** One tensor per model input, in the model's input order. */
  readonly inputs: readonly HostTensor[];
  /** Rows along the batch dimension (1 for a model that does not batch). */
  readonly rows: number;
  /** Only requests with equal keys (their non-batch dimensions) share a batch. */
  readonly key: string;
  /** Outputs to return, by name; empty means all. */
  readonly outputs: readonly string[];
  /** Aborting it removes the request from the queue; its reason is the error the request fails with. */
  readonly signal?: AbortSignal;
  /** performance.now() time after which the request must not run; Infinity for none. */
  readonly deadline: number;
  /** 1 is the highest; 0 (the default) runs after every prioritized request. */
  readonly priority?: number;
  /** Whose request it is: the queue is shared fairly between tenants. */
  readonly tenant?: string;
}

export interface BatchResult {
  /** The requested outputs, each a view of this request's rows in the batch's output (no copy). */
  readonly outputs: readonly HostTensor[];
  readonly queueMs: number;
  readonly runMs: number;
  /** Rows in the batch this request ran in. */
  readonly batchRows: number;
}
