import type { ServiceDefinition } from "@grpc/grpc-js";
import { invalidArgument, type ServerError } from "../common/errors.js";

/**
 * What a request that is not valid protobuf decodes to. grpc-js answers a deserializer that throws with
 * INTERNAL "Error deserializing request"; a client's bad bytes are the client's error, so the deserializer
 * hands this marker to the handler adapters instead, and they answer INVALID_ARGUMENT (ending a stream).
 */
export class MalformedRequest {
  constructor(
    readonly method: string,
    readonly reason: string,
  ) {}

  toError(): ServerError {
    return invalidArgument(`${this.method}: the request is not a valid protobuf message (${this.reason}); check the client's message types against proto/`);
  }
}

/** The decoder's words about the client's own bytes, short and on one line; nothing of the server's. */
function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/\s+/g, " ").slice(0, 120) || "undecodable";
}

/** A method's name from its path: "/aiaas.v1.Inference/Predict" → "Predict". */
export const methodName = (path: string): string => path.slice(path.lastIndexOf("/") + 1);

/** The same service with every request deserializer returning a MalformedRequest rather than throwing. */
export function withSafeDecoding<T extends ServiceDefinition>(definition: T): T {
  const safe: Record<string, unknown> = {};
  for (const [key, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    const name = methodName(method.path);
    safe[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer): unknown => {
        try {
          return decode(bytes);
        } catch (error) {
          return new MalformedRequest(name, reasonOf(error));
        }
      },
    };
  }
  return safe as T;
}

/** The request itself, or the INVALID_ARGUMENT its malformed bytes deserve. */
export function checkDecoded<Req>(request: Req | MalformedRequest): Req {
  if (request instanceof MalformedRequest) throw request.toError();
  return request;
}

/**
 * Whether a client half-closed a stream in the middle of a message (its last length prefix promised more
 * bytes than came). grpc-js drops such a partial message silently and reports a clean half-close, which
 * would end the stream OK with a request lost; this reads the call's frame decoder (grpc-js 1.x keeps it
 * as `decoder.readState`, 0 between messages) so the stream can end INVALID_ARGUMENT instead. If a grpc-js
 * upgrade moves it, this answers false and the test of the case fails.
 */
export function endedMidMessage(call: unknown): boolean {
  const decoder = (call as { call?: { decoder?: { readState?: unknown } } }).call?.decoder;
  return typeof decoder?.readState === "number" && decoder.readState !== 0;
}
