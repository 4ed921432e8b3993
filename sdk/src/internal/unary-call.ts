import type { CallOptions as GrpcCallOptions, ClientUnaryCall, Metadata, ServiceError } from "@grpc/grpc-js";
import { AiaasError, Code } from "../errors.js";

/** A generated client's unary method, bound to its client. */
export type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: Partial<GrpcCallOptions>,
  callback: (error: ServiceError | null, response?: Res) => void,
) => ClientUnaryCall;

/** One unary call with a deadline and cancellation by signal, as a promise; failures are AiaasErrors. */
export function unaryCall<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: Metadata, deadline: number, signal: AbortSignal | undefined): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    if (signal?.aborted) return reject(new AiaasError(Code.CANCELLED, "the call was cancelled"));
    const onAbort = (): void => call.cancel();
    const call = method(request, metadata, { deadline: new Date(deadline) }, (error, response) => {
      signal?.removeEventListener("abort", onAbort);
      if (error) reject(signal?.aborted && signal.reason instanceof AiaasError ? signal.reason : AiaasError.from(error));
      else resolve(response as Res);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
