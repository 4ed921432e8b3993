// The console's API on the operations port: each `POST /api/<service>/<method>` is the gRPC method of that name,
// called in-process with the request's bearer key (the same authentication, roles, quotas and handler as over
// gRPC, in the ts-proto JSON form of its messages). A streaming method answers as server-sent events. Payload
// methods (Predict, Train) are not here: the console shows and controls, it does not carry tensors.
import { Code, ServerError, codeName } from "../common/errors.js";
import type { OperationsAnswer, OperationsRequest } from "./operations-types.js";

/** What the console may call, by "<package.Service>/<Method>"; the root provides it from rpc/. */
export interface ConsoleBackend {
  /** Whether the method streams its answer. */
  readonly methods: ReadonlyMap<string, { readonly responseStream: boolean }>;
  call(name: string, json: unknown, call: { peer: string; authorization: string | undefined; signal: AbortSignal }): Promise<unknown> | AsyncIterable<unknown>;
  /** Who the key is (the same authentication as a gRPC call's); `authentication: false` when keys are off. */
  session(authorization: string | undefined, peer: string): { authentication: boolean; keyId: string; tenant: string | undefined; roles: readonly string[] };
}

const MAX_BODY_BYTES = 64 * 1024;
/** An idle event stream sends a comment this often, so proxies and the browser keep it open. */
const KEEPALIVE_MS = 15_000;

/** The HTTP status of a gRPC code, as grpc-gateway maps them. */
const HTTP_STATUS: Record<number, number> = {
  [Code.CANCELLED]: 499,
  [Code.INVALID_ARGUMENT]: 400,
  [Code.DEADLINE_EXCEEDED]: 504,
  [Code.NOT_FOUND]: 404,
  [Code.ALREADY_EXISTS]: 409,
  [Code.PERMISSION_DENIED]: 403,
  [Code.RESOURCE_EXHAUSTED]: 429,
  [Code.FAILED_PRECONDITION]: 400,
  [Code.ABORTED]: 409,
  [Code.OUT_OF_RANGE]: 400,
  [Code.UNIMPLEMENTED]: 501,
  [Code.UNAVAILABLE]: 503,
  [Code.UNAUTHENTICATED]: 401,
};

const NO_STORE = { "cache-control": "no-store" };
const json = (status: number, body: unknown): OperationsAnswer => ({ status, headers: { "content-type": "application/json", ...NO_STORE }, body: JSON.stringify(body) });

/** A failure as the console sees it: the status name and the message a gRPC client would get. */
function failed(error: unknown): OperationsAnswer {
  const e = error instanceof ServerError ? error : new ServerError(Code.INTERNAL, "internal error");
  return json(HTTP_STATUS[e.code] ?? 500, { code: codeName(e.code), message: e.message });
}

const sse = (event: string | undefined, data: unknown): string => `${event ? `event: ${event}\n` : ""}data: ${JSON.stringify(data)}\n\n`;

/** A stream's messages as server-sent events; its end as an `end` event with the status it ended with. */
async function* events(messages: AsyncIterable<unknown>, signal: AbortSignal): AsyncGenerator<string> {
  const iterator = messages[Symbol.asyncIterator]();
  let pending = iterator.next();
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), KEEPALIVE_MS)));
      const next = await Promise.race([pending, idle]).finally(() => clearTimeout(timer));
      if (signal.aborted) return;
      if (next === "idle") {
        yield ": keepalive\n\n";
        continue;
      }
      if (next.done) break;
      yield sse(undefined, next.value);
      pending = iterator.next();
    }
    yield sse("end", { code: "OK" });
  } catch (error) {
    const e = error instanceof ServerError ? error : new ServerError(Code.INTERNAL, "internal error");
    yield sse("end", { code: codeName(e.code), message: e.message });
  } finally {
    void iterator.return?.();
  }
}

/** Answers `/api/...`; undefined for any other path. */
export function consoleApi(backend: () => ConsoleBackend | undefined): (request: OperationsRequest) => Promise<OperationsAnswer> | undefined {
  return (request) => {
    if (!request.path.startsWith("/api/")) return undefined;
    return answer(backend(), request);
  };
}

async function answer(backend: ConsoleBackend | undefined, request: OperationsRequest): Promise<OperationsAnswer> {
  if (!backend) return json(503, { code: "UNAVAILABLE", message: "the server is starting" });
  const peer = `console ${request.peer ?? "unknown"}`;
  try {
    if (request.path === "/api/session") {
      if (request.method !== "GET") return json(405, { code: "UNIMPLEMENTED", message: "GET /api/session" });
      return json(200, backend.session(request.authorization, peer));
    }
    const name = request.path.slice("/api/".length);
    const method = backend.methods.get(name);
    if (!method) return json(404, { code: "NOT_FOUND", message: `the console has no method ${name}` });
    if (request.method !== "POST") return json(405, { code: "UNIMPLEMENTED", message: `POST /api/${name} with a JSON body` });
    // A JSON content type makes a cross-site page's request a preflighted one, which this port never allows.
    if (!/^application\/json\b/i.test(request.contentType ?? "")) return json(415, { code: "INVALID_ARGUMENT", message: "send the request as content-type: application/json" });
    const body = request.body ?? "";
    if (Buffer.byteLength(body) > MAX_BODY_BYTES) return json(413, { code: "INVALID_ARGUMENT", message: `the request body is over ${MAX_BODY_BYTES} bytes` });
    let parsed: unknown;
    try {
      parsed = body.trim() ? JSON.parse(body) : {};
    } catch {
      return json(400, { code: "INVALID_ARGUMENT", message: "the request body is not JSON" });
    }
    const signal = request.signal ?? new AbortController().signal;
    const result = backend.call(name, parsed, { peer, authorization: request.authorization, signal });
    if (!method.responseStream) return json(200, await (result as Promise<unknown>));
    return {
      status: 200,
      headers: { "content-type": "text/event-stream", ...NO_STORE, "x-accel-buffering": "no" },
      body: "",
      stream: events(result as AsyncIterable<unknown>, signal),
    };
  } catch (error) {
    return failed(error);
  }
}
