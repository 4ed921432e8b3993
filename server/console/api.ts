// The console's only way to the server: its gRPC methods through /api/<service>/<method> (JSON), with the key
// as a bearer header. The key lives in this tab's sessionStorage only: never in a URL or a cookie.
const KEY = "aiaas.key";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export const key = {
  get: (): string => sessionStorage.getItem(KEY) ?? "",
  set: (value: string): void => sessionStorage.setItem(KEY, value),
  clear: (): void => sessionStorage.removeItem(KEY),
};

function headers(): Record<string, string> {
  const token = key.get();
  return { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

async function failure(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
  return new ApiError(response.status, body.code ?? String(response.status), body.message ?? response.statusText);
}

export interface Session {
  readonly authentication: boolean;
  readonly keyId: string;
  readonly tenant?: string;
  readonly roles: readonly string[];
}

export async function session(): Promise<Session> {
  const response = await fetch("/api/session", { headers: headers() });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as Session;
}

/** Calls a unary method, e.g. call("aiaas.v1.Models/ListModels"). */
export async function call<T>(method: string, request: object = {}): Promise<T> {
  const response = await fetch(`/api/${method}`, { method: "POST", headers: headers(), body: JSON.stringify(request) });
  if (!response.ok) throw await failure(response);
  return (await response.json()) as T;
}

export interface Watch {
  close(): void;
}

/**
 * Follows a streaming method: each message to `onMessage`; `onEnd` with the status it ended with ("OK", or
 * the code and message of its failure). Server-sent events read from fetch, since EventSource cannot send a
 * bearer header.
 */
export function watch<T>(method: string, request: object, onMessage: (message: T) => void, onEnd: (code: string, message?: string) => void): Watch {
  const controller = new AbortController();
  void (async () => {
    try {
      const response = await fetch(`/api/${method}`, { method: "POST", headers: headers(), body: JSON.stringify(request), signal: controller.signal });
      if (!response.ok || !response.body) {
        const e = await failure(response);
        return onEnd(e.code, e.message);
      }
      for await (const event of serverSentEvents(response.body)) {
        if (event.event === "end") {
          const end = JSON.parse(event.data) as { code: string; message?: string };
          return onEnd(end.code, end.message);
        }
        onMessage(JSON.parse(event.data) as T);
      }
      onEnd("UNAVAILABLE", "the server closed the stream");
    } catch (error) {
      if (!controller.signal.aborted) onEnd("UNAVAILABLE", (error as Error).message);
    }
  })();
  return { close: () => controller.abort() };
}

/** The events of a text/event-stream body (comments skipped). */
async function* serverSentEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
    // A fast job's events arrive faster than they are drawn: reads that are already buffered resolve as
    // microtasks one after another and would never let the page render; a task boundary after each read does.
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}
