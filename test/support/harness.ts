// Starts a real server on 127.0.0.1:0 over a temporary repository and gives tests generated grpc-js clients.
import { credentials, Metadata, type CallOptions, type ServiceError } from "@grpc/grpc-js";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  DataType,
  InferenceClient,
  ModelsClient,
  PredictRequest,
  Tensor,
  type PredictResponse,
} from "@aiaas/sdk/gen";
import { startServer, type RunningServer, type ServeOptions } from "@aiaas/server";
import { writeRepository, type FixtureModel } from "./fixtures.js";

export interface Harness {
  readonly server: RunningServer;
  readonly root: string;
  readonly inference: InferenceClient;
  readonly models: ModelsClient;
  predict(request: Partial<PredictRequest>, options?: Partial<CallOptions>): Promise<PredictResponse>;
  close(): Promise<void>;
}

export async function startHarness(models: Record<string, FixtureModel>, options: Partial<ServeOptions> = {}): Promise<Harness> {
  const root = await mkdtemp(join(tmpdir(), "aiaas-test-"));
  await writeRepository(root, models);
  const server = await startServer({ modelsDir: root, host: "127.0.0.1", port: 0, logger: pino({ level: "silent" }), providers: ["cpu"], ...options });
  const inference = new InferenceClient(server.address, credentials.createInsecure());
  const modelsClient = new ModelsClient(server.address, credentials.createInsecure());
  return {
    server,
    root,
    inference,
    models: modelsClient,
    predict(request, callOptions = {}) {
      return new Promise((resolve, reject) =>
        inference.predict(predictRequest(request), new Metadata(), callOptions, (error, response) => (error ? reject(error) : resolve(response))),
      );
    },
    async close() {
      inference.close();
      modelsClient.close();
      await server.shutdown();
      await rm(root, { recursive: true, force: true });
      await rm(`${root}.tenants`, { recursive: true, force: true });
    },
  };
}

export function predictRequest(partial: Partial<PredictRequest>): PredictRequest {
  return PredictRequest.fromPartial(partial);
}

export function tensor(partial: Partial<Tensor> & { name: string; datatype: DataType }): Tensor {
  return Tensor.fromPartial(partial);
}

export function fp32(name: string, shape: number[], values: ArrayLike<number>): Tensor {
  const data = Float32Array.from(values);
  return tensor({ name, datatype: DataType.DATA_TYPE_FP32, shape: shape.map(BigInt), rawData: new Uint8Array(data.buffer) });
}

export function readFp32(t: Tensor): Float32Array {
  const copy = new Uint8Array(t.rawData); // aligned copy for the typed view
  return new Float32Array(copy.buffer);
}

export function unary<Req, Res>(fn: (req: Req, md: Metadata, options: Partial<CallOptions>, cb: (e: ServiceError | null, r: Res) => void) => unknown, req: Req, options: Partial<CallOptions> = {}): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, new Metadata(), options, (e, r) => (e ? reject(e) : resolve(r))));
}

/** Resolves with the gRPC status code of a failing call (and its message), or fails if the call succeeds. */
export async function codeOf(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error("expected the call to fail");
}

export function deadlineIn(ms: number): Partial<CallOptions> {
  return { deadline: new Date(Date.now() + ms) };
}
