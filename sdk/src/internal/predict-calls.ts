import type { Metadata } from "@grpc/grpc-js";
import type { ClientHttp2Session } from "node:http2";
import { PredictRequest, PredictStreamResponse, type InferenceClient } from "../gen/aiaas/v1/inference.js";
import { AiaasError } from "../errors.js";
import { FrameEncoder, H2Call, MAX_RECEIVE_BYTES, grpcRequestHeaders } from "./h2-call.js";
import type { H2Connection } from "./h2-connection.js";

/** One PredictStream call, whichever transport carries it: the mux's shared stream, or a user's stream. */
export interface PredictCall {
  write(request: PredictRequest): void;
  /** No more requests: the server answers those it has, then ends the stream. */
  end(): void;
  /** Ends the call at once (the server drops its work for it); `closed` reports CANCELLED. */
  cancel(): void;
}

export interface PredictCallEvents {
  message(response: PredictStreamResponse): void;
  /** Once, when the call is over: `undefined` when the server ended it with OK. */
  closed(error: AiaasError | undefined): void;
  /** The server is going away: send nothing more on this call. */
  draining?(): void;
}

export type OpenPredictCall = (events: PredictCallEvents) => PredictCall;

/** PredictStream calls on grpc-js's channel (several addresses, a grpc-js target, channelOptions). */
export function grpcJsPredictCalls(client: InferenceClient, metadata: () => Metadata): OpenPredictCall {
  return (events) => {
    const call = client.predictStream(metadata());
    call.on("data", events.message);
    call.on("error", (error) => events.closed(AiaasError.from(error)));
    call.on("end", () => events.closed(undefined));
    return { write: (request) => call.write(request), end: () => call.end(), cancel: () => call.cancel() };
  };
}

/** PredictStream calls on the SDK's own HTTP/2 connection to its one server. */
export function h2PredictCalls(connection: H2Connection, apiKey: string | undefined, server: string): OpenPredictCall {
  const headers = grpcRequestHeaders("/aiaas.v1.Inference/PredictStream", apiKey);
  return (events) => {
    let opened: ReturnType<H2Connection["request"]>;
    try {
      opened = connection.request(headers);
    } catch (error) {
      // Going away (the calls on it are retried), or a closed client.
      queueMicrotask(() => events.closed(error as AiaasError));
      return { write: () => undefined, end: () => undefined, cancel: () => undefined };
    }
    const onGoaway = (session: ClientHttp2Session): void => {
      if (session === opened.session) events.draining?.();
    };
    connection.onGoaway.add(onGoaway);
    const encoder = new FrameEncoder(PredictRequest.encode);
    const call = new H2Call(opened.stream, opened.session, PredictStreamResponse.decode, {
      message: events.message,
      closed(error) {
        connection.onGoaway.delete(onGoaway);
        events.closed(error);
      },
    }, MAX_RECEIVE_BYTES, server);
    return { write: (request) => call.writeFrame(encoder.frame(request)), end: () => call.end(), cancel: () => call.cancel() };
  };
}
