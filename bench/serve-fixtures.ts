// The serving benchmarks' models and request frames, written to a work folder: the seed CNN with batching on
// and off, a tiny linear model, and each request as one gRPC frame and as 64 frames (a stream's body for h2load).
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DataType, PredictRequest } from "@aiaas/sdk/gen";
import { ModelInferRequest } from "@aiaas/sdk/gen/inference";
import { encodeModel } from "../server/src/training/onnx/index.js";
import { buildMnistCnn, buildMnistLinear } from "../scripts/model-zoo.js";
import { seededRandom, uniformInit } from "../scripts/seeded-random.js";

export interface ServeFixtures {
  /** The model repository to serve. */
  readonly repo: string;
  readonly models: Record<string, { bytes: Uint8Array; config: object }>;
  readonly cnnRequest: PredictRequest;
  readonly nobatchRequest: PredictRequest;
  /** Encoded requests by name (cnn, cnn-nobatch, tiny, cnn-oip); `<work>/<name>.frame` and `<name>.x64.frame` hold them framed. */
  readonly payloads: Record<string, Buffer>;
  readonly random: () => number;
  /** Each model's input shape with a batch of 1. */
  readonly inputShapes: Record<string, readonly number[]>;
}

export async function writeServeFixtures(work: string): Promise<ServeFixtures> {
  const repo = join(work, "models");
  const random = seededRandom(3);
  const models: Record<string, { bytes: Uint8Array; config: object }> = {
    cnn: { bytes: encodeModel(buildMnistCnn()), config: { max_batch_size: 64 } },
    "cnn-nobatch": { bytes: encodeModel(buildMnistCnn()), config: { max_batch_size: 0, inputs: { image: { shape: [1, 1, 28, 28] } } } },
    tiny: { bytes: encodeModel(buildMnistLinear(uniformInit(random, 7840, 784), uniformInit(random, 10, 784), "bench")), config: { max_batch_size: 256 } },
  };
  // The tiny model again without batching: where the transport, not the model, is the cost.
  models["tiny-nobatch"] = { bytes: models.tiny!.bytes, config: { max_batch_size: 0, inputs: { image: { shape: [1, 784] } } } };
  for (const [name, m] of Object.entries(models)) {
    await mkdir(join(repo, name, "1"), { recursive: true });
    await writeFile(join(repo, name, "1", "model.onnx"), m.bytes);
    await writeFile(join(repo, name, "config.json"), JSON.stringify(m.config));
  }

  function request(model: string, dims: number[]): PredictRequest {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, () => random());
    return {
      model, version: "", id: "", outputs: [], outputEncoding: 0, timeoutMs: 0,
      inputs: [{ name: "image", datatype: DataType.DATA_TYPE_FP32, shape: dims.map(BigInt), rawData: new Uint8Array(data.buffer), fp32Data: [], fp64Data: [], int32Data: [], int64Data: [], uint32Data: [], uint64Data: [], boolData: [] }],
    };
  }
  const frame = (message: Uint8Array): Buffer => {
    const out = Buffer.alloc(5 + message.length);
    out.writeUInt32BE(message.length, 1);
    out.set(message, 5);
    return out;
  };
  const cnnRequest = request("cnn", [1, 1, 28, 28]);
  const nobatchRequest = { ...cnnRequest, model: "cnn-nobatch" };
  const tinyRequest = request("tiny", [1, 784]);
  const tinyNobatchRequest = { ...tinyRequest, model: "tiny-nobatch" };
  // The same image as an Open Inference Protocol ModelInferRequest.
  const oipRequest = ModelInferRequest.fromPartial({
    modelName: "cnn",
    inputs: [{ name: "image", datatype: "FP32", shape: [1n, 1n, 28n, 28n] }],
    rawInputContents: [cnnRequest.inputs[0].rawData],
  });
  const payloads = {
    "cnn-oip": Buffer.from(ModelInferRequest.encode(oipRequest).finish()),
    cnn: Buffer.from(PredictRequest.encode(cnnRequest).finish()),
    "cnn-nobatch": Buffer.from(PredictRequest.encode(nobatchRequest).finish()),
    tiny: Buffer.from(PredictRequest.encode(tinyRequest).finish()),
    "tiny-nobatch": Buffer.from(PredictRequest.encode(tinyNobatchRequest).finish()),
  };
  for (const [name, bytes] of Object.entries(payloads)) {
    await writeFile(join(work, `${name}.frame`), frame(bytes));
    // 64 requests in one body: h2load then drives PredictStream natively (one stream = 64 messages).
    await writeFile(join(work, `${name}.x64.frame`), Buffer.concat(Array.from({ length: 64 }, () => frame(bytes))));
  }
  return { repo, models, cnnRequest, nobatchRequest, payloads, random, inputShapes: { cnn: [1, 1, 28, 28], "cnn-nobatch": [1, 1, 28, 28], tiny: [1, 784], "tiny-nobatch": [1, 784] } };
}
