import { AiaasError, Code } from "../errors.js";
import { H2Call, grpcRequestHeaders, MAX_RECEIVE_BYTES } from "./h2-call.js";
import type { H2Connection } from "./h2-connection.js";
import { abortError, type UnaryCaller, type UnaryDefinition } from "./unary-call.js";

/**
 * Unary calls on the SDK's own HTTP/2 connection, beside its PredictStreams: one connection per client for
 * all of it. The deadline travels as grpc-timeout (the server stops the work) and is kept here too (a server
 * that never answers).
 */
export function h2Unary(connection: H2Connection, apiKey: string | undefined, server: string): UnaryCaller {
  return <Req, Res>(method: UnaryDefinition<Req, Res>, request: Req, deadline: number, signal: AbortSignal | undefined) =>
    new Promise<Res>((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const remaining = Math.max(1, Math.ceil(deadline - Date.now()));
      let opened: ReturnType<H2Connection["request"]>;
      try {
        opened = connection.request({ ...grpcRequestHeaders(method.path, apiKey), "grpc-timeout": grpcTimeout(remaining) });
      } catch (error) {
        return reject(error as AiaasError);
      }
      let answer: { value: Res } | undefined;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = (): void => call.cancel(abortError(signal!));
      const call = new H2Call(opened.stream, opened.session, (bytes) => method.responseDeserialize(bytes as Buffer), {
        message: (response) => void (answer ??= { value: response }),
        closed(error) {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          if (error) reject(error);
          else if (answer) resolve(answer.value);
          else reject(new AiaasError(Code.INTERNAL, `${method.path} ended without an answer`));
        },
      }, MAX_RECEIVE_BYTES, server);
      timer = setTimeout(() => call.cancel(new AiaasError(Code.DEADLINE_EXCEEDED, `no answer within ${remaining} ms`)), remaining);
      signal?.addEventListener("abort", onAbort, { once: true });
      call.writeMessage(method.requestSerialize(request));
      call.end();
    });
}

/** gRPC's timeout header: at most 8 digits and a unit. */
function grpcTimeout(ms: number): string {
  if (ms < 1e8) return `${ms}m`;
  if (ms < 1e11) return `${Math.ceil(ms / 1000)}S`;
  return `${Math.min(99_999_999, Math.ceil(ms / 3_600_000))}H`;
}
