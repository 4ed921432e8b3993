/** One answer of the operations port. */
export interface OperationsAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** A streamed body (server-sent events), written after `body` as it comes; it ends the response when done. */
  readonly stream?: AsyncIterable<string>;
}

/** A request of the operations port as the routes see it (from HTTP, or passed on by the primary of `--processes`). */
export interface OperationsRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  /** A POST's body (the console's API), its content type, the client's address, and its going away. */
  readonly body?: string;
  readonly contentType?: string;
  readonly peer?: string;
  readonly signal?: AbortSignal;
}
