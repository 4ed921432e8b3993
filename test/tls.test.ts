// TLS and mutual TLS between `aiaas serve`'s credentials and the SDK's `tls` option, with committed
// test-only certificates (test/fixtures/tls).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { AiaasError, Code, Tensor, createClient } from "@aiaas/sdk";
import { affineModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";

const pem = (name: string) => readFileSync(new URL(`./fixtures/tls/${name}`, import.meta.url));
const x = { x: Tensor.float32([1, 4], [1, 1, 1, 1]) };
const refused = (e: unknown) => e instanceof AiaasError && e.code === Code.UNAVAILABLE;

describe("TLS", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { tls: { cert: pem("server.pem"), key: pem("server.key") } });
  });
  after(() => h.close());

  it("serves a client that trusts the server's CA", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, tls: { ca: pem("ca.pem") } });
    const result = await client.predict("affine", x, { outputs: ["y"] });
    assert.deepEqual([...result.outputs.y.data], [3, 4, 5, 6]);
    client.close();
  });

  it("refuses a plaintext client and one that does not trust the certificate", async () => {
    const plain = createClient({ address: `localhost:${h.server.port}`, retry: { maxAttempts: 1 } });
    await assert.rejects(plain.predict("affine", x, { timeoutMs: 3000 }), refused);
    plain.close();
    const untrusting = createClient({ address: `localhost:${h.server.port}`, tls: {}, retry: { maxAttempts: 1 } });
    await assert.rejects(untrusting.predict("affine", x, { timeoutMs: 3000 }), refused);
    untrusting.close();
  });
});

describe("mutual TLS", () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } }, { tls: { cert: pem("server.pem"), key: pem("server.key"), clientCa: pem("ca.pem") } });
  });
  after(() => h.close());

  it("serves a client with a certificate the client CA signed", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, tls: { ca: pem("ca.pem"), cert: pem("client.pem"), key: pem("client.key") } });
    const result = await client.predict("affine", x, { outputs: ["z"] });
    assert.deepEqual([...result.outputs.z.data], [2, 2, 2, 2]);
    client.close();
  });

  it("refuses a client without a certificate", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, tls: { ca: pem("ca.pem") }, retry: { maxAttempts: 1 } });
    await assert.rejects(client.predict("affine", x, { timeoutMs: 3000 }), refused);
    client.close();
  });
});
