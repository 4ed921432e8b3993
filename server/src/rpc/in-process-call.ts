// The console's API calls the server's own gRPC methods without a network hop: each call is handed to the
// method's grpc-js handler as the transport would hand it (metadata with the caller's authorization header,
// cancellation, a writable side for a stream), so it passes exactly the middleware a gRPC call passes
// (authentication, roles, quotas, telemetry) and the same handler answers it.
import { Metadata, type UntypedServiceImplementation } from "@grpc/grpc-js";
import { EventEmitter } from "node:events";
import { Code, ServerError } from "../common/errors.js";

/** A method the console may call: its service and name, and its messages' JSON codecs (ts-proto's). */
export interface InProcessMethod {
  readonly service: string;
  readonly method: string;
  readonly responseStream: boolean;
  readonly request: { fromJSON(json: unknown): unknown };
  readonly response: { toJSON(message: never): unknown };
}

export interface InProcessCall {
  /** Where the call came from, for the logs and the audit ("console 127.0.0.1:51234"). */
  readonly peer: string;
  /** The HTTP request's authorization header, passed on as the call's. */
  readonly authorization: string | undefined;
  /** Aborts when the HTTP client goes away: the call is cancelled. */
  readonly signal: AbortSignal;
}

/** The surface of a grpc-js server call that the handler adapters (rpc/handlers.ts) use. */
class LocalCall extends EventEmitter {
  readonly metadata = new Metadata();
  writableLength = 0;
  cancelled = false;

  constructor(
    readonly request: unknown,
    private readonly peer: string,
    private readonly write_: (message: unknown) => void,
    private readonly end_: (error?: { code: number; details: string }) => void,
  ) {
    super();
  }

  getDeadline(): number {
    return Infinity;
  }

  getPeer(): string {
    return this.peer;
  }

  write(message: unknown): boolean {
    this.write_(message);
    return true;
  }

  end(): void {
    this.end_();
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // The adapters end a stream with an error by emitting it as the call's "error".
    if (event === "error") {
      this.end_(args[0] as { code: number; details: string });
      return true;
    }
    return super.emit(event, ...args);
  }
}

const failure = (status: { code: number; details: string }): ServerError => new ServerError(status.code as Code, status.details);

/** Calls one method of `services` in-process and hands back its JSON answer (a stream: each message as it comes). */
export function callInProcess(
  services: ReadonlyMap<string, UntypedServiceImplementation>,
  method: InProcessMethod,
  json: unknown,
  call: InProcessCall,
): Promise<unknown> | AsyncIterable<unknown> {
  const handler = services.get(method.service)?.[method.method.charAt(0).toLowerCase() + method.method.slice(1)] as
    | ((call: LocalCall, callback?: (error: { code: number; details: string } | null, response?: unknown) => void) => void)
    | undefined;
  if (!handler) throw new ServerError(Code.UNIMPLEMENTED, `${method.service}/${method.method} is not served here`);
  let request: unknown;
  try {
    request = method.request.fromJSON(json);
  } catch (error) {
    throw new ServerError(Code.INVALID_ARGUMENT, `the request is not a valid ${method.method} request: ${(error as Error).message}`);
  }
  const toJSON = (m: unknown): unknown => method.response.toJSON(m as never);
  return method.responseStream ? streamCall(handler, request, call, toJSON) : unaryCall(handler, request, call, toJSON);
}

function prepare(local: LocalCall, call: InProcessCall): () => void {
  if (call.authorization) local.metadata.set("authorization", call.authorization);
  const cancel = (): void => {
    local.cancelled = true;
    local.emit("cancelled");
  };
  call.signal.addEventListener("abort", cancel);
  return () => call.signal.removeEventListener("abort", cancel);
}

function unaryCall(handler: (call: LocalCall, callback: (error: { code: number; details: string } | null, response?: unknown) => void) => void, request: unknown, call: InProcessCall, toJSON: (m: unknown) => unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const local = new LocalCall(request, call.peer, () => undefined, () => undefined);
    const release = prepare(local, call);
    handler(local, (error, response) => {
      release();
      if (error) reject(failure(error));
      else resolve(toJSON(response));
    });
  });
}

/**
 * Starts a streaming call now: a refusal the middleware makes before the handler runs (no key, a missing role)
 * is thrown here, so the console answers it with its HTTP status rather than as a stream's last event.
 */
function streamCall(handler: (call: LocalCall) => void, request: unknown, call: InProcessCall, toJSON: (m: unknown) => unknown): AsyncIterable<unknown> {
  const queue: unknown[] = [];
  let ended: { error?: { code: number; details: string } } | undefined;
  let wake: (() => void) | undefined;
  const local = new LocalCall(
    request,
    call.peer,
    (m) => {
      queue.push(toJSON(m));
      // A reader slower than the handler pushes back: the adapter waits for "drain" past its limit.
      local.writableLength = queue.length;
      wake?.();
    },
    (error) => {
      ended ??= { error };
      wake?.();
    },
  );
  const release = prepare(local, call);
  handler(local);
  if (ended?.error && queue.length === 0) {
    release();
    throw failure(ended.error);
  }
  return (async function* () {
    try {
      for (;;) {
        const next = queue.shift();
        local.writableLength = queue.length;
        if (queue.length === 0) local.emit("drain");
        if (next !== undefined) yield next;
        else if (ended) break;
        else await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
      if (ended.error && ended.error.code !== Code.OK) throw failure(ended.error);
    } finally {
      release();
      // The consumer stopped reading (its client went away): the handler's call is cancelled.
      if (!ended) local.emit("cancelled");
    }
  })();
}
