import { InferenceService, PredictResponse, PredictStreamResponse } from "@aiaas/sdk/gen";
import { GRPCInferenceServiceService, ModelInferResponse, ModelStreamInferResponse } from "@aiaas/sdk/gen/inference";

// ts-proto's grpc-js definitions wrap each encoded reply in Buffer.from(bytes), which copies it. The
// encoder's output is a fresh array no one else holds, so a Buffer view of the same memory serves.
const view = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** A reply serializer that also takes a reply already encoded (reply-encoding.ts) as it is. */
function serializer<T>(encode: (value: T) => { finish(): Uint8Array }): (value: T | Buffer) => Buffer {
  return (value) => (Buffer.isBuffer(value) ? value : view(encode(value as T).finish()));
}

/** The Inference service definition: replies encoded without the extra copy, or already encoded. */
export const inferenceServiceDefinition = {
  ...InferenceService,
  predict: { ...InferenceService.predict, responseSerialize: serializer((v: PredictResponse) => PredictResponse.encode(v)) },
  predictStream: { ...InferenceService.predictStream, responseSerialize: serializer((v: PredictStreamResponse) => PredictStreamResponse.encode(v)) },
} as const;

/** The Open Inference Protocol's definition with ModelInfer's replies taken already encoded. */
export const inferenceProtocolDefinition = {
  ...GRPCInferenceServiceService,
  modelInfer: { ...GRPCInferenceServiceService.modelInfer, responseSerialize: serializer((v: ModelInferResponse) => ModelInferResponse.encode(v)) },
  modelStreamInfer: {
    ...GRPCInferenceServiceService.modelStreamInfer,
    responseSerialize: serializer((v: ModelStreamInferResponse) => ModelStreamInferResponse.encode(v)),
  },
} as const;
