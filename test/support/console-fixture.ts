// A server for the console's tests and screenshots: API keys on (two tenants with a model each, a public
// model, an admin), the operations port with the console, and every log line kept for inspection.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { installTelemetry, startServer, type RunningServer } from "@aiaas/server";
import { createClient, Tensor, type AiaasClient, type TrainChunk, type TrainSpecInput } from "@aiaas/sdk";
import { KeyStore } from "../../server/src/auth/index.js";
import { affineModel, writeRepository } from "./fixtures.js";

export interface ConsoleFixture {
  readonly server: RunningServer;
  readonly url: string;
  readonly tokens: Readonly<Record<"alpha" | "beta" | "admin" | "reader", string>>;
  readonly keyIds: Readonly<Record<"alpha" | "beta" | "admin" | "reader", string>>;
  /** Every log line the server wrote, as written. */
  readonly logs: string[];
  client(who: "alpha" | "beta" | "admin" | "reader"): AiaasClient;
  close(): Promise<void>;
}

export async function startConsoleFixture(options: { auth?: boolean } = {}): Promise<ConsoleFixture> {
  const dir = await mkdtemp(join(tmpdir(), "aiaas-console-"));
  await writeRepository(join(dir, "public"), { shared: { model: affineModel() } });
  await writeRepository(join(dir, "tenants", "alpha"), { "alpha-model": { model: affineModel() } });
  await writeRepository(join(dir, "tenants", "beta"), { "beta-model": { model: affineModel() } });
  const keysFile = join(dir, "keys.json");
  const store = await KeyStore.open(keysFile);
  const tokens: Record<string, string> = {};
  const keyIds: Record<string, string> = {};
  for (const [name, tenant, roles] of [
    ["alpha", "alpha", ["predict", "train"]],
    ["beta", "beta", ["predict", "train"]],
    ["reader", "alpha", ["predict"]],
    ["admin", "ops", ["admin"]],
  ] as const) {
    const { token, key } = await store.create({ tenant, roles: [...roles], name });
    tokens[name] = token;
    keyIds[name] = key.id;
  }
  store.close();
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(...String(chunk).split("\n").filter(Boolean));
      done();
    },
  });
  const server = await startServer({
    modelsDir: join(dir, "public"),
    host: "127.0.0.1",
    port: 0,
    providers: ["cpu"],
    logger: pino({ level: "debug" }, sink),
    http: { port: 0, metrics: installTelemetry({ prometheus: true, env: {} }).metricsHandler },
    ...(options.auth === false ? {} : { auth: { keysFile, tenantModelsDir: join(dir, "tenants") } }),
    training: { checkpointsDir: join(dir, "checkpoints") },
  });
  const clients: AiaasClient[] = [];
  return {
    server,
    url: `http://127.0.0.1:${server.httpPort}`,
    tokens: tokens as ConsoleFixture["tokens"],
    keyIds: keyIds as ConsoleFixture["keyIds"],
    logs,
    client(who) {
      const c = createClient({ address: server.address, apiKey: options.auth === false ? undefined : tokens[who], retry: { maxAttempts: 1 } });
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.close();
      await server.shutdown();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Rows of a fixed function (4 features, 3 classes): a job that learns within seconds. */
export function* trainingChunks(chunks = 8): Iterable<TrainChunk> {
  for (let chunk = 0; chunk < chunks; chunk++) {
    const x = new Float32Array(128 * 4);
    const y = new BigInt64Array(128);
    for (let r = 0; r < 128; r++) {
      const row = chunk * 128 + r;
      for (let f = 0; f < 4; f++) x[r * 4 + f] = Math.sin(row * 0.37 + f * 1.3);
      y[r] = BigInt(x[r * 4]! > 0.3 ? 2 : x[r * 4 + 1]! > 0 ? 1 : 0);
    }
    yield { inputs: { x: Tensor.float32([128, 4], x) }, labels: Tensor.int64([128], y) };
  }
}

export const trainingSpec = (model: string, epochs: number): TrainSpecInput => ({
  model,
  architecture: { input: { name: "x", dims: [4] }, layers: [{ type: "dense", units: 32 }, { type: "relu" }, { type: "dense", units: 3 }] },
  task: "classification",
  optimizer: { type: "adam", learningRate: 0.01 },
  batchSize: 16,
  epochs,
  seed: 3,
  metricsIntervalSteps: 4,
  validationFraction: 0.2,
});
