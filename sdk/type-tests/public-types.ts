// Compile-time tests of the SDK's public types: `tsc -p sdk/type-tests` must pass, which also requires each
// expect-error directive below to meet an error. Nothing here runs.
import { AiaasError, Code, Tensor, createClient, type AiaasClient, type StreamResult, type TensorType } from "../src/index.js";

declare const client: AiaasClient;

// Factories take the matching typed array or plain values, and return a tensor typed by its element type.
const f32: Tensor<"float32"> = Tensor.float32([1, 4], new Float32Array(4));
const f32FromNumbers: Tensor<"float32"> = Tensor.float32([2], [1, 2]);
const i64: Tensor<"int64"> = Tensor.int64([2], [1, 2n]);
const i64Typed: Tensor<"int64"> = Tensor.int64([2], new BigInt64Array(2));
const flags: Tensor<"bool"> = Tensor.bool([2], [true, false]);
// @ts-expect-error an Int32Array is not float32 data
Tensor.float32([2], new Int32Array(2));
// @ts-expect-error int64 takes BigInt64Array, not Float64Array
Tensor.int64([2], new Float64Array(2));
// @ts-expect-error booleans are not float32 values
Tensor.float32([2], [true, false]);
// @ts-expect-error a shape is a list of numbers
Tensor.float32(4, new Float32Array(4));

// Reading back: data is the typed array of the tensor's type.
const pixels: Float32Array = f32.data;
const big: BigInt64Array = i64.data;
// @ts-expect-error a float32 tensor's data is not a BigInt64Array
const wrong: BigInt64Array = f32.data;
// @ts-expect-error a tensor of one type is not a tensor of another
const mismatched: Tensor<"int64"> = f32;
const anyType: TensorType = f32.type;

async function usage(): Promise<void> {
  const result = await client.predict<"logits" | "probabilities">("mnist-cnn", { image: Tensor.float32([1, 1, 28, 28], new Float32Array(784)) }, {
    timeoutMs: 1000,
    signal: new AbortController().signal,
    outputs: ["logits"],
  });
  const logits: Tensor = result.outputs.logits;
  // @ts-expect-error only the named outputs exist on a typed result
  result.outputs.embeddings;
  // @ts-expect-error inputs are tensors, not raw arrays
  await client.predict("mnist-cnn", { image: new Float32Array(784) });
  // @ts-expect-error timeoutMs is a number
  await client.predict("mnist-cnn", {}, { timeoutMs: "1s" });

  for await (const r of client.predictStream([{ model: "m", inputs: { x: f32 } }])) {
    const item: StreamResult = r;
    if (r.ok) {
      const out: Tensor = r.outputs.y;
    } else {
      const code: Code = r.error.code;
      // @ts-expect-error a failed result has no outputs
      r.outputs;
    }
  }
  const stream = client.predictStream({ signal: new AbortController().signal });
  const id: string = stream.send({ model: "m", inputs: { x: f32 }, timeoutMs: 100 });
  stream.end();

  const models = await client.models.list();
  const state: "loading" | "ready" | "unavailable" | "unloading" | "unloaded" | "failed" | "unknown" = models[0].state;
  const shape: readonly number[] = models[0].versions[0].inputs[0].shape;

  try {
    await client.models.get("x");
  } catch (error) {
    const e = AiaasError.from(error);
    const code: Code = e.code;
    const message: string = e.details;
  }
}

// @ts-expect-error createClient needs options
createClient();
createClient({ address: "localhost:50051", apiKey: "k", defaultTimeoutMs: 5000, retry: { maxAttempts: 3 } });
createClient({ addresses: ["10.0.0.1:50051", "10.0.0.2:50051"], tls: { ca: "PEM" } });
// @ts-expect-error unknown option
createClient({ address: "localhost:50051", timeout: 5 });

void [f32FromNumbers, i64Typed, flags, pixels, big, wrong, mismatched, anyType, usage];
