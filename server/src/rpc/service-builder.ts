import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Role } from "../auth/index.js";
import type { CallContext } from "./call-context.js";
import { bidi, serverStream, unary, type HandlerEnv } from "./handlers.js";
import { methodName } from "./request-decoding.js";

/** The parts of a ts-proto grpc-js method definition the builder reads; the types come from its codecs. */
interface MethodDefinition {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
  readonly requestDeserialize: (bytes: Buffer) => unknown;
  readonly responseSerialize: (value: never) => Buffer;
}

type RequestOf<D> = D extends { requestDeserialize: (bytes: Buffer) => infer R } ? R : never;
type ResponseOf<D> = D extends { responseSerialize: (value: infer R) => Buffer } ? R : never;

/** A method's handler, typed by its definition: unary, server stream or bidirectional stream. */
export type HandlerOf<D> = D extends { requestStream: true; responseStream: true }
  ? (requests: AsyncIterable<RequestOf<D>>, context: CallContext) => AsyncIterable<ResponseOf<D>>
  : D extends { requestStream: false; responseStream: true }
    ? (request: RequestOf<D>, context: CallContext) => AsyncIterable<ResponseOf<D>>
    : D extends { requestStream: false; responseStream: false }
      ? (request: RequestOf<D>, context: CallContext) => Promise<ResponseOf<D>>
      : never;

/** One method's implementation: the role a caller needs, declared beside the handler. */
export interface MethodImplementation<D> {
  readonly role: Role;
  readonly handle: HandlerOf<D>;
}

/** Every method of a generated service definition: a new RPC without a role and a handler does not compile. */
export type ServiceImplementation<S> = { readonly [K in keyof S]: MethodImplementation<S[K]> };


/**
 * A grpc-js service implementation from typed handlers: each method is adapted (unary, server stream, bidi)
 * and wrapped in the server's middleware with its declared role.
 */
export function implement<S extends Record<string, MethodDefinition>>(definition: S, env: HandlerEnv, methods: ServiceImplementation<S>): UntypedServiceImplementation {
  const service: UntypedServiceImplementation = {};
  for (const key of Object.keys(definition)) {
    const d = definition[key]!;
    const { role, handle } = methods[key as keyof S];
    const info = { method: methodName(d.path), role, streaming: d.requestStream || d.responseStream };
    if (d.requestStream && d.responseStream) service[key] = bidi(env, info, handle as never);
    else if (d.responseStream) service[key] = serverStream(env, info, handle as never);
    else if (!d.requestStream) service[key] = unary(env, info, handle as never);
    else throw new Error(`${info.method}: client-streaming methods have no adapter`);
  }
  return service;
}
