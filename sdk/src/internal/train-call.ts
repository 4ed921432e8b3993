import type { Metadata, ServiceError } from "@grpc/grpc-js";
import type { TrainingClient, TrainEvent as WireTrainEvent, TrainRequest } from "../gen/aiaas/v1/training.js";
import { AiaasError, Code } from "../errors.js";
import { trainEventFromWire, type TrainEvent } from "../train-events.js";
import type { TrainSpec } from "../gen/aiaas/v1/training.js";
import { tensorToWire, type Tensor } from "../tensor.js";

/** A chunk of labelled examples, as train() takes them. */
export interface ExampleChunk {
  readonly inputs: Readonly<Record<string, Tensor>>;
  readonly labels: Tensor;
  readonly validation?: boolean;
}

/** Events of a server stream as an AsyncIterable, with the stream's failure as an AiaasError. */
export async function* trainEvents(
  stream: AsyncIterable<WireTrainEvent> & { cancel(): void },
  signal: AbortSignal | undefined,
  writeFailure?: () => unknown,
): AsyncGenerator<TrainEvent> {
  const onAbort = (): void => stream.cancel();
  signal?.addEventListener("abort", onAbort, { once: true });
  let finished = false;
  try {
    for await (const event of stream) yield trainEventFromWire(event);
    finished = true;
  } catch (error) {
    const failure = writeFailure?.();
    if (failure) throw failure;
    if (signal?.aborted) throw signal.reason instanceof AiaasError ? signal.reason : new AiaasError(Code.CANCELLED, "the call was cancelled");
    throw AiaasError.from(error as ServiceError);
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) stream.cancel();
  }
}

/** Opens a Train stream, uploads the spec then the examples (respecting back-pressure), and yields the job's events. */
export function startTraining(
  training: TrainingClient,
  metadata: Metadata,
  spec: TrainSpec,
  examples: AsyncIterable<ExampleChunk> | Iterable<ExampleChunk>,
  signal: AbortSignal | undefined,
): AsyncIterable<TrainEvent> {
  const stream = training.train(metadata);
  let failure: unknown;
  const write = async (message: TrainRequest): Promise<void> => {
    if (stream.write(message)) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        stream.off("drain", done);
        stream.off("close", done);
        resolve();
      };
      stream.once("drain", done);
      stream.once("close", done);
    });
  };
  void (async () => {
    await write({ message: { $case: "spec", value: spec } });
    for await (const chunk of examples) {
      if (stream.destroyed || stream.writableEnded) return;
      const inputs = Object.entries(chunk.inputs).map(([name, t]) => tensorToWire(name, t));
      await write({ message: { $case: "data", value: { inputs, labels: tensorToWire("labels", chunk.labels), validation: chunk.validation ?? false } } });
    }
    stream.end();
  })().catch((error: unknown) => {
    // The examples failed to produce: the upload is broken, so the job must not train on part of it.
    failure = error instanceof AiaasError ? error : new AiaasError(Code.CANCELLED, `train: reading the examples failed: ${(error as Error).message}`, { cause: error });
    stream.cancel();
  });
  return trainEvents(stream, signal, () => failure);
}
