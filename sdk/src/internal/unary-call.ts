import type { Client, Metadata } from "@grpc/grpc-js";
import { AiaasError, Code } from "../errors.js";

/** A unary method of a generated service definition (ts-proto's `ModelsService.getModel`, ...). */
export interface UnaryDefinition<Req, Res> {
  readonly path: string;
  requestSerialize(value: Req): Buffer;
  responseDeserialize(value: Buffer): Res;
}

/** Makes one unary call with a deadline (Date.now() time) and cancellation by signal; fails with AiaasErrors. */
export type UnaryCaller = <Req, Res>(method: UnaryDefinition<Req, Res>, request: Req, deadline: number, signal: AbortSignal | undefined) => Promise<Res>;

/** What a call cancelled by `signal` fails with: the signal's own AiaasError, or CANCELLED. */
export function abortError(signal: AbortSignal): AiaasError {
  return signal.reason instanceof AiaasError ? signal.reason : new AiaasError(Code.CANCELLED, "the call was cancelled");
}

/** Unary calls on grpc-js's channel (any client of it makes them). */
export function grpcJsUnary(client: Client, metadata: () => Metadata): UnaryCaller {
  return (method, request, deadline, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortError(signal));
      const onAbort = (): void => call.cancel();
      const call = client.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata(), { deadline: new Date(deadline) }, (error, response) => {
        signal?.removeEventListener("abort", onAbort);
        if (error) reject(signal?.aborted ? abortError(signal) : AiaasError.from(error));
        else resolve(response!);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
}
