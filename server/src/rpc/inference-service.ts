import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { SpanStatusCode } from "@opentelemetry/api";
import type { PredictRequest, PredictResponse, PredictStreamResponse } from "@aiaas/sdk/gen";
import { validateRequest } from "../batching/index.js";
import { ServerError } from "../common/errors.js";
import type { ModelScopes } from "../serving/index.js";
import { instruments, tracer, tracing } from "../telemetry/instruments.js";
import { withTimeout, type CallContext } from "./call-context.js";
import { concurrentResponses } from "./concurrent-responses.js";
import type { HandlerEnv } from "./handlers.js";
import { publicError } from "./error-mapping.js";
import { implement } from "./service-builder.js";
import { inferenceServiceDefinition } from "./zero-copy-service.js";
import { encodePredictResponse, type PredictReply } from "./reply-encoding.js";
import { decodeInputs, encodeOutput, toDataType, useTypedOutputs, type DecodeLimits } from "./tensor-codec.js";

export interface InferenceDeps extends HandlerEnv {
  /** Models by caller: a tenant's own and the public ones. */
  readonly scopes: ModelScopes;
  readonly limits: DecodeLimits;
  /** Requests one stream may have running at once before the server stops reading from it. */
  readonly maxStreamInflight: number;
}

const UNRESOLVED: Readonly<Record<string, string>> = { tenant: "", model: "(unresolved)" };

// Attribute sets with the status code, made once per (version, code) instead of once per request.
const coded = new WeakMap<Readonly<Record<string, string>>, Map<status, Record<string, string>>>();
function withCode(attributes: Readonly<Record<string, string>>, code: status): Record<string, string> {
  let byCode = coded.get(attributes);
  if (!byCode) coded.set(attributes, (byCode = new Map()));
  let value = byCode.get(code);
  if (!value) byCode.set(code, (value = { ...attributes, code: status[code] }));
  return value;
}

/** The smaller of two timeouts where 0 means none. */
const earliest = (a: number, b: number): number => (a > 0 && b > 0 ? Math.min(a, b) : a || b);

/** A request's outputs, not yet encoded; `typed`: the reply carries them in the typed fields. */
export interface Prediction extends PredictReply {
  readonly typed: boolean;
}

/**
 * Runs one request: resolve the version, decode, validate, queue. `priority` 1 is the highest, 0 the default
 * (after every prioritized request).
 */
export async function predict(deps: InferenceDeps, request: PredictRequest, context: CallContext, priority = 0): Promise<Prediction> {
  const started = performance.now();
  const span = tracing ? tracer.startSpan("aiaas.predict") : undefined;
  let code = status.OK;
  // Labels only from what the server knows: a caller's made-up model names must not become label values.
  let attributes = UNRESOLVED;
  try {
    // Each message of a stream is a request of the caller's rate limit (a unary call took its token).
    if (context.streaming) context.takeToken();
    // resolve -> validate -> submit run in one tick, so no reload can slip in between.
    const version = deps.scopes.for(context.caller).resolve(request.model, request.version);
    attributes = version.attributes;
    span?.setAttributes({ "aiaas.tenant": version.attributes.tenant ?? "", "aiaas.model": version.model, "aiaas.version": version.version });
    const decoded = decodeInputs(version.label, request.inputs, deps.limits);
    const prepared = validateRequest(version.label, version.signature, decoded.tensors, request.outputs);
    const scope = withTimeout(context, earliest(version.config.defaultTimeoutMs, request.timeoutMs));
    let result;
    try {
      result = await version.batcher.submit({
        inputs: prepared.inputs,
        rows: prepared.rows,
        key: prepared.key,
        outputs: prepared.outputs,
        signal: scope.signal,
        deadline: scope.deadline,
        priority,
        tenant: context.fairnessKey,
      });
    } finally {
      scope.dispose();
    }
    instruments.queueWait.record(result.queueMs, attributes);
    span?.setAttribute("aiaas.batch_rows", result.batchRows);
    const names = prepared.outputs.length ? prepared.outputs : version.outputNames;
    return {
      model: version.model,
      version: version.versionText,
      id: request.id,
      outputs: result.outputs.map((tensor, i) => ({ name: names[i]!, tensor })),
      typed: useTypedOutputs(request.outputEncoding, decoded.typed),
    };
  } catch (error) {
    const e = ServerError.from(error);
    code = e.code;
    span?.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    throw e;
  } finally {
    span?.end();
    instruments.requestLatency.record(performance.now() - started, attributes);
    instruments.requests.add(1, withCode(attributes, code));
  }
}

export function createInferenceService(deps: InferenceDeps): UntypedServiceImplementation {
  return implement(inferenceServiceDefinition, deps, {
    predict: { role: "predict", handle: async (request, context) => predictReply(await predict(deps, request, context)) },
    predictStream: { role: "predict", handle: (requests, context) =>
      predictStream(deps, requests, context),
    },
  });
}

/**
 * Requests on one stream run concurrently (so they batch with each other and with everyone else) and answer
 * as they finish; a failed request answers with its error and the stream goes on.
 */
function predictStream(deps: InferenceDeps, requests: AsyncIterable<PredictRequest>, context: CallContext): AsyncIterable<PredictStreamResponse | Buffer> {
  return concurrentResponses(
    requests,
    deps.maxStreamInflight,
    async (request): Promise<PredictStreamResponse | Buffer> => predictReply(await predict(deps, request, context), true),
    (request, error): PredictStreamResponse | Buffer => {
      const e = publicError(error, deps.logger, "PredictStream");
      return { result: { $case: "error", value: { id: request.id, code: e.code, message: e.message } } };
    },
    { serverStopping: context.serverStopping, call: context.signal },
  );
}

/**
 * The reply on the wire: raw outputs encoded straight into one buffer (the common case); typed outputs as a
 * message for the generated encoder. `wrapped`: as a PredictStreamResponse.
 */
function predictReply(prediction: Prediction, wrapped: true): PredictStreamResponse | Buffer;
function predictReply(prediction: Prediction, wrapped?: false): PredictResponse | Buffer;
function predictReply(prediction: Prediction, wrapped = false): PredictResponse | PredictStreamResponse | Buffer {
  const { outputs } = prediction;
  if (!prediction.typed) {
    return encodePredictResponse(prediction, outputs.map((o) => toDataType(o.tensor.type)), wrapped);
  }
  const value: PredictResponse = {
    model: prediction.model,
    version: prediction.version,
    id: prediction.id,
    outputs: outputs.map((o) => encodeOutput(o.name, o.tensor, true)),
  };
  return wrapped ? { result: { $case: "response", value } } : value;
}
