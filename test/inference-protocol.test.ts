// The Open Inference Protocol through its generated grpc-js client, as a Triton/KServe client calls it.
import assert from "node:assert/strict";
import { credentials, Metadata, status, type ServiceError } from "@grpc/grpc-js";
import { after, before, describe, it } from "node:test";
import {
  GRPCInferenceServiceClient,
  InferParameter,
  ModelInferRequest,
  ModelInstanceGroup_Kind,
  type ModelInferResponse,
  type ModelStreamInferResponse,
} from "@aiaas/sdk/gen/inference";
import { affineModel, slowModel } from "./support/fixtures.js";
import { codeOf, startHarness, type Harness } from "./support/harness.js";

type Method<Req, Res> = (req: Req, md: Metadata, cb: (e: ServiceError | null, r: Res) => void) => unknown;

describe("Open Inference Protocol (inference.GRPCInferenceService)", () => {
  let h: Harness;
  let client: GRPCInferenceServiceClient;
  // Any unary method of the client; the caller names the response fields it reads.
  const call = <Res,>(method: (...args: never[]) => unknown, request: unknown): Promise<Res> =>
    new Promise((resolve, reject) =>
      (method as unknown as Method<unknown, Res>).call(client, request, new Metadata(), (e, r) => (e ? reject(e) : resolve(r))),
    );
  const fp32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer);
  const floats = (bytes: Uint8Array) => [...new Float32Array(new Uint8Array(bytes).buffer)];
  const infer = (partial: Parameters<typeof ModelInferRequest.fromPartial>[0]) =>
    call<ModelInferResponse>(client.modelInfer, ModelInferRequest.fromPartial(partial));

  before(async () => {
    h = await startHarness({
      affine: { model: affineModel(), config: { max_batch_size: 8, preferred_batch_sizes: [4], max_queue_delay_us: 100 } },
      slow: { model: slowModel(), config: { max_batch_size: 1, instance_count: 1 } },
    });
    client = new GRPCInferenceServiceClient(h.server.address, credentials.createInsecure());
  });
  after(async () => {
    client.close();
    await h.close();
  });

  it("answers liveness, readiness and server metadata", async () => {
    assert.deepEqual(await call(client.serverLive, {}), { live: true });
    assert.deepEqual(await call(client.serverReady, {}), { ready: true });
    const meta = await call<{ name: string; extensions: string[] }>(client.serverMetadata, {});
    assert.equal(meta.name, "aiaas");
    assert.ok(meta.extensions.includes("model_repository"));
    assert.deepEqual(await call(client.modelReady, { name: "affine", version: "" }), { ready: true });
    assert.deepEqual(await call(client.modelReady, { name: "nope", version: "" }), { ready: false });
  });

  it("describes a model with the protocol's datatype names", async () => {
    const meta = await call<{ platform: string; versions: string[]; inputs: Array<{ name: string; datatype: string; shape: bigint[] }> }>(
      client.modelMetadata,
      { name: "affine", version: "" },
    );
    assert.equal(meta.platform, "onnxruntime_onnx");
    assert.deepEqual(meta.versions, ["1"]);
    assert.deepEqual(meta.inputs, [{ name: "x", datatype: "FP32", shape: [-1n, 4n] }]);
    const missing = await codeOf(call(client.modelMetadata, { name: "nope", version: "" }));
    assert.equal(missing.code, status.NOT_FOUND);
  });

  it("infers from raw_input_contents and from typed contents, with output selection and the id echoed", async () => {
    const raw = await infer({ modelName: "affine", id: "r1", inputs: [{ name: "x", datatype: "FP32", shape: [2n, 4n] }], rawInputContents: [fp32([1, 1, 1, 1, 0, 0, 0, 0])] });
    assert.equal(raw.id, "r1");
    assert.equal(raw.modelVersion, "1");
    assert.deepEqual(raw.outputs.map((o) => [o.name, o.datatype, o.shape]), [["y", "FP32", [2n, 4n]], ["z", "FP32", [2n, 4n]]]);
    assert.deepEqual(floats(raw.rawOutputContents[0]), [3, 4, 5, 6, 1, 2, 3, 4]);
    const typed = await infer({ modelName: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1n, 4n], contents: { fp32Contents: [0, 1, 2, 3] } }], outputs: [{ name: "z" }] });
    assert.deepEqual(typed.outputs.map((o) => o.name), ["z"]);
    assert.deepEqual(floats(typed.rawOutputContents[0]), [0, 2, 4, 6]);
  });

  it("refuses what ONNX cannot serve with a clear INVALID_ARGUMENT", async () => {
    const bytes = await codeOf(infer({ modelName: "affine", inputs: [{ name: "x", datatype: "BYTES", shape: [1n, 1n], contents: { bytesContents: [Buffer.from("hi")] } }] }));
    assert.equal(bytes.code, status.INVALID_ARGUMENT);
    assert.match(bytes.details, /BYTES: ONNX models served by aiaas take numeric and boolean tensors only/);
    const wrongType = await codeOf(infer({ modelName: "affine", inputs: [{ name: "x", datatype: "INT32", shape: [1n, 4n] }], rawInputContents: [Buffer.alloc(16)] }));
    assert.equal(wrongType.code, status.INVALID_ARGUMENT);
    assert.match(wrongType.details, /is INT32, the model expects FP32/);
    const count = await codeOf(infer({ modelName: "affine", inputs: [{ name: "x", datatype: "FP32", shape: [1n, 4n] }], rawInputContents: [Buffer.alloc(16), Buffer.alloc(16)] }));
    assert.match(count.details, /2 entries for 1 inputs/);
  });

  it("streams: a failed request answers with error_message and the stream goes on", async () => {
    const stream = client.modelStreamInfer();
    const answers: ModelStreamInferResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (r: ModelStreamInferResponse) => answers.push(r));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    for (let i = 0; i < 10; i++) {
      const shape = i === 4 ? [1n, 3n] : [1n, 4n];
      stream.write(ModelInferRequest.fromPartial({ modelName: "affine", id: `s${i}`, inputs: [{ name: "x", datatype: "FP32", shape }], rawInputContents: [fp32(i === 4 ? [1, 2, 3] : [i, i, i, i])] }));
    }
    stream.end();
    await done;
    assert.equal(answers.length, 10);
    const bad = answers.find((a) => a.inferResponse?.id === "s4")!;
    assert.match(bad.errorMessage, /^INVALID_ARGUMENT: .*dimension 1 must be 4/);
    const good = answers.find((a) => a.inferResponse?.id === "s7")!;
    assert.equal(good.errorMessage, "");
    assert.deepEqual(floats(good.inferResponse!.rawOutputContents[0]), [15, 16, 17, 18]);
  });

  it("honours the timeout (µs) and priority parameters in the batcher", async () => {
    const row = (v: number) => ({ modelName: "slow", inputs: [{ name: "x", datatype: "FP32", shape: [1n, 512n] }], rawInputContents: [fp32(new Array(512).fill(v))] });
    const finished: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => finished.push(name), () => finished.push(`${name}!`));
    const blocker = track("blocker", infer(row(0)));
    await new Promise((r) => setTimeout(r, 30)); // the blocker is running; the rest queue behind it
    const normal = [1, 2].map((i) => track(`normal${i}`, infer(row(i))));
    const urgent = track("urgent", infer({ ...row(9), parameters: { priority: InferParameter.fromPartial({ parameterChoice: { $case: "int64Param", value: 1n } }) } }));
    const hurried = codeOf(infer({ ...row(5), parameters: { timeout: InferParameter.fromPartial({ parameterChoice: { $case: "uint64Param", value: 5000n } }) } }));
    await Promise.all([blocker, ...normal, urgent]);
    assert.deepEqual(finished, ["blocker", "urgent", "normal1", "normal2"], "the priority-1 request overtakes the queued ones");
    assert.equal((await hurried).code, status.DEADLINE_EXCEEDED);
  });

  it("reports configuration, statistics and the repository index; loads and unloads", async () => {
    const { config } = await call<{ config: { maxBatchSize: number; input: Array<{ dims: bigint[] }>; schedulingChoice?: { $case: string; value: { preferredBatchSize: number[]; maxQueueDelayMicroseconds: bigint } }; instanceGroup: Array<{ kind: number; count: number }>; platform: string } }>(
      client.modelConfig,
      { name: "affine", version: "" },
    );
    assert.equal(config.platform, "onnxruntime_onnx");
    assert.equal(config.maxBatchSize, 8);
    assert.deepEqual(config.input[0].dims, [4n], "dims leave out the batch dimension of a batching model");
    assert.equal(config.schedulingChoice?.$case, "dynamicBatching");
    assert.deepEqual(config.schedulingChoice?.value.preferredBatchSize, [4]);
    assert.equal(config.schedulingChoice?.value.maxQueueDelayMicroseconds, 100n);
    assert.equal(config.instanceGroup[0].kind, ModelInstanceGroup_Kind.KIND_CPU);

    const stats = await call<{ modelStats: Array<{ name: string; version: string; inferenceCount: bigint; executionCount: bigint; lastInference: bigint; inferenceStats: { success: { count: bigint; ns: bigint }; fail: { count: bigint } } }> }>(
      client.modelStatistics,
      { name: "affine", version: "" },
    );
    const s = stats.modelStats[0];
    assert.equal(s.version, "1");
    assert.ok(s.inferenceCount >= 12n && s.executionCount >= 1n && s.executionCount <= s.inferenceCount);
    assert.ok(s.inferenceStats.success.count >= 10n && s.inferenceStats.success.ns > 0n);
    assert.ok(s.lastInference > BigInt(Date.now() - 60_000));

    const index = await call<{ models: Array<{ name: string; version: string; state: string }> }>(client.repositoryIndex, { repositoryName: "", ready: false });
    assert.deepEqual(index.models.map((m) => `${m.name}:${m.version}:${m.state}`).sort(), ["affine:1:READY", "slow:1:READY"]);
    await call(client.repositoryModelUnload, { repositoryName: "", modelName: "slow", parameters: {} });
    assert.deepEqual(await call(client.modelReady, { name: "slow", version: "" }), { ready: false });
    const readyOnly = await call<{ models: Array<{ name: string }> }>(client.repositoryIndex, { repositoryName: "", ready: true });
    assert.deepEqual(readyOnly.models.map((m) => m.name), ["affine"]);
    await call(client.repositoryModelLoad, { repositoryName: "", modelName: "slow", parameters: {} });
    assert.deepEqual(await call(client.modelReady, { name: "slow", version: "" }), { ready: true });
    const missing = await codeOf(call(client.repositoryModelLoad, { repositoryName: "", modelName: "nope", parameters: {} }));
    assert.equal(missing.code, status.NOT_FOUND);
  });
});

describe("Open Inference Protocol through a client that is not this repository's generated code", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ cnn: { model: (await import("./support/fixtures.js")).buildMnistCnn(), config: { max_batch_size: 8 } } });
  });
  after(() => h.close());

  it("a dynamic @grpc/proto-loader client gets outputs bit-identical to aiaas.v1 Predict", async () => {
    const { loadSync } = await import("@grpc/proto-loader");
    const grpc = await import("@grpc/grpc-js");
    const definition = loadSync("inference/grpc_service.proto", { includeDirs: [new URL("../proto", import.meta.url).pathname], keepCase: true, longs: String, defaults: true });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      inference: { GRPCInferenceService: new (address: string, creds: ReturnType<typeof grpc.credentials.createInsecure>) => Record<string, Function> & { close(): void } };
    };
    const dynamic = new pkg.inference.GRPCInferenceService(h.server.address, grpc.credentials.createInsecure());
    const pixels = Float32Array.from({ length: 2 * 784 }, (_, i) => ((i * 7919) % 255) / 255);
    const oip = await new Promise<{ raw_output_contents: Buffer[]; outputs: Array<{ name: string; datatype: string; shape: string[] }> }>((resolve, reject) =>
      dynamic.ModelInfer(
        { model_name: "cnn", inputs: [{ name: "image", datatype: "FP32", shape: [2, 1, 28, 28] }], outputs: [{ name: "logits" }], raw_input_contents: [Buffer.from(pixels.buffer)] },
        (e: Error | null, r: never) => (e ? reject(e) : resolve(r)),
      ),
    );
    dynamic.close();
    assert.deepEqual(oip.outputs[0], { name: "logits", datatype: "FP32", shape: ["2", "10"], parameters: {}, contents: null });
    const { fp32 } = await import("./support/harness.js");
    const v1 = await h.predict({ model: "cnn", inputs: [fp32("image", [2, 1, 28, 28], pixels)], outputs: ["logits"] });
    assert.ok(Buffer.from(v1.outputs[0].rawData).equals(oip.raw_output_contents[0]), "the same bytes through both protocols");
  });
});
