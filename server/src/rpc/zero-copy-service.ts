import { InferenceService, PredictResponse, PredictStreamResponse } from "@aiaas/sdk/gen";

// ts-proto's grpc-js definitions wrap each encoded reply in Buffer.from(bytes), which copies it. The
// encoder's output is a fresh array no one else holds, so a Buffer view of the same memory serves.
const view = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** The Inference service definition with replies encoded without the extra copy. */
export const inferenceServiceDefinition: typeof InferenceService = {
  ...InferenceService,
  predict: { ...InferenceService.predict, responseSerialize: (value: PredictResponse) => view(PredictResponse.encode(value).finish()) },
  predictStream: {
    ...InferenceService.predictStream,
    responseSerialize: (value: PredictStreamResponse) => view(PredictStreamResponse.encode(value).finish()),
  },
};
