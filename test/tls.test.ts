// TLS and mutual TLS between `aiaas serve`'s credentials and the SDK's `tls` option, with certificates made at
// test time (test/support/certificates.ts, openssl).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { AiaasError, Code, Tensor, createClient } from "@aiaas/sdk";
import { KeyStore } from "../server/src/auth/index.js";
import { makeCertificates, type Certificates } from "./support/certificates.js";
import { aiaas } from "./support/cli.js";
import { affineModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";
import { pino } from "pino";

const x = { x: Tensor.float32([1, 4], [1, 1, 1, 1]) };
const refused = (e: unknown) => e instanceof AiaasError && e.code === Code.UNAVAILABLE;
let certs: Certificates;

describe("TLS", () => {
  let h: Harness;
  before(async () => {
    certs = makeCertificates();
    h = await startHarness({ affine: { model: affineModel() } }, { tls: { cert: certs.serverCert, key: certs.serverKey } });
  });
  after(() => h.close());

  it("serves a client that trusts the server's CA", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, tls: { ca: certs.ca } });
    const result = await client.predict("affine", x, { outputs: ["y"] });
    assert.deepEqual([...result.outputs.y.data], [3, 4, 5, 6]);
    client.close();
  });

  it("refuses a plaintext client, one that trusts the wrong CA, and one that trusts no CA of its own", async () => {
    const plain = createClient({ address: `localhost:${h.server.port}`, retry: { maxAttempts: 1 } });
    await assert.rejects(plain.predict("affine", x, { timeoutMs: 3000 }), refused);
    plain.close();
    const wrongCa = createClient({ address: `localhost:${h.server.port}`, tls: { ca: certs.otherCa }, retry: { maxAttempts: 1 } });
    await assert.rejects(wrongCa.predict("affine", x, { timeoutMs: 3000 }), refused);
    wrongCa.close();
    const untrusting = createClient({ address: `localhost:${h.server.port}`, tls: {}, retry: { maxAttempts: 1 } });
    await assert.rejects(untrusting.predict("affine", x, { timeoutMs: 3000 }), refused);
    untrusting.close();
  });
});

describe("mutual TLS", () => {
  let h: Harness;
  let keysDir: string;
  let token: string;
  let adminToken: string;
  before(async () => {
    certs ??= makeCertificates();
    keysDir = await mkdtemp(join(tmpdir(), "aiaas-mtls-keys-"));
    const store = await KeyStore.open(join(keysDir, "keys.json"));
    token = (await store.create({ tenant: "acme", roles: ["predict"] })).token;
    adminToken = (await store.create({ tenant: "ops", roles: ["admin"] })).token;
    h = await startHarness(
      { affine: { model: affineModel() } },
      { tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.ca }, auth: { keysFile: join(keysDir, "keys.json") } },
    );
  });
  after(async () => {
    await h.close();
    await rm(keysDir, { recursive: true, force: true });
  });

  it("serves a client with a certificate the client CA signed (and an API key)", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, apiKey: token, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } });
    const result = await client.predict("affine", x, { outputs: ["z"] });
    assert.deepEqual([...result.outputs.z.data], [2, 2, 2, 2]);
    client.close();
  });

  it("refuses a client without a certificate, and one whose certificate another CA signed", async () => {
    const bare = createClient({ address: `localhost:${h.server.port}`, apiKey: token, tls: { ca: certs.ca }, retry: { maxAttempts: 1 } });
    await assert.rejects(bare.predict("affine", x, { timeoutMs: 3000 }), refused);
    bare.close();
    const foreign = createClient({
      address: `localhost:${h.server.port}`,
      apiKey: token,
      tls: { ca: certs.ca, cert: certs.otherClientCert, key: certs.otherClientKey },
      retry: { maxAttempts: 1 },
    });
    await assert.rejects(foreign.predict("affine", x, { timeoutMs: 3000 }), refused);
    foreign.close();
  });

  it("the CLI's client commands speak (mutual) TLS: models, and keys through the Admin service", async () => {
    await writeFile(join(keysDir, "ca.pem"), certs.ca);
    await writeFile(join(keysDir, "client.pem"), certs.clientCert);
    await writeFile(join(keysDir, "client.key"), certs.clientKey);
    const tls = ["--tls-ca", join(keysDir, "ca.pem"), "--tls-cert", join(keysDir, "client.pem"), "--tls-key", join(keysDir, "client.key")];
    const cli = aiaas;
    const models = await cli("models", "--address", `localhost:${h.server.port}`, "--api-key", token, ...tls);
    assert.equal(models.code, 0, models.stderr);
    assert.match(models.stdout, /affine\s+ready/);
    const keys = await cli("keys", "list", "--address", `localhost:${h.server.port}`, "--api-key", adminToken, ...tls);
    assert.equal(keys.code, 0, keys.stderr);
    assert.match(keys.stdout, /acme\s+predict\s+active/);
    const plain = await cli("models", "--address", `localhost:${h.server.port}`, "--api-key", token, "--timeout", "3000");
    assert.equal(plain.code, 1);
  });

  it("a valid certificate is not a key: without one the call is UNAUTHENTICATED", async () => {
    const client = createClient({ address: `localhost:${h.server.port}`, tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey }, retry: { maxAttempts: 1 } });
    await assert.rejects(client.predict("affine", x), (e) => e instanceof AiaasError && e.code === Code.UNAUTHENTICATED);
    client.close();
  });
});

describe("the operations console beside TLS", () => {
  it("is off with mutual TLS (its plain-HTTP API cannot check client certificates), and warned about with TLS alone", async () => {
    certs ??= makeCertificates();
    for (const clientCa of [certs.ca, undefined]) {
      const lines: string[] = [];
      const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
      const h = await startHarness({}, { tls: { cert: certs.serverCert, key: certs.serverKey, clientCa }, http: { port: 0 }, logger });
      try {
        const page = await fetch(`http://127.0.0.1:${h.server.httpPort}/`);
        const api = await fetch(`http://127.0.0.1:${h.server.httpPort}/api/session`);
        if (clientCa) {
          assert.equal(page.status, 404, "no console with mutual TLS");
          assert.equal(api.status, 404);
          assert.ok(lines.some((l) => l.includes("operations console off") && l.includes("--tls-client-ca")));
        } else {
          assert.equal(page.status, 200);
          assert.ok(lines.some((l) => l.includes("the operations console is plain HTTP while gRPC uses TLS")));
        }
      } finally {
        await h.close();
      }
    }
  });
});
