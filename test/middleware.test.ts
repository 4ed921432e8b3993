// The RPC middleware in memory: composition order, a refusal that ends the steps already entered, the end
// running once, and the standard steps (authentication, roles, quotas) against a real key store.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Metadata } from "@grpc/grpc-js";
import pino from "pino";
import { KeyStore, Quotas, createAuditLog, createAuthenticator } from "../server/src/auth/index.js";
import { Code, ServerError } from "../server/src/common/errors.js";
import { createCallContext, type CallContext } from "../server/src/rpc/call-context.js";
import { composeMiddleware, serverMiddleware, type Middleware } from "../server/src/rpc/middleware/index.js";

function contextWith(authorization?: string): CallContext {
  const metadata = new Metadata();
  if (authorization) metadata.set("authorization", authorization);
  const call = { metadata, getDeadline: () => Infinity, getPeer: () => "ipv4:127.0.0.1:1", on: () => undefined, removeListener: () => undefined };
  return createCallContext(call, new AbortController().signal);
}

function recorder(name: string, log: string[], refuse = false): Middleware {
  return {
    name,
    forMethod: ({ method }) => {
      log.push(`${name}:method ${method}`);
      return () => {
        log.push(`${name}:enter`);
        if (refuse) throw new ServerError(Code.PERMISSION_DENIED, `${name} refused`);
        return (code) => log.push(`${name}:end ${code}`);
      };
    },
  };
}

describe("middleware", () => {
  it("enters in order, ends in reverse, once", () => {
    const log: string[] = [];
    const enter = composeMiddleware([recorder("a", log), recorder("b", log)], { method: "Predict", role: "predict", streaming: false });
    assert.deepEqual(log, ["a:method Predict", "b:method Predict"], "per-method setup runs when composed, not per call");
    const end = enter(contextWith());
    end(Code.OK);
    end(Code.INTERNAL);
    assert.deepEqual(log.slice(2), ["a:enter", "b:enter", "b:end 0", "a:end 0"]);
  });

  it("a refusal ends the steps already entered with its code and skips the rest", () => {
    const log: string[] = [];
    const enter = composeMiddleware([recorder("a", log), recorder("b", log, true), recorder("c", log)], { method: "GetJob", role: "train", streaming: false });
    assert.throws(() => enter(contextWith()), /b refused/);
    assert.deepEqual(log.slice(3), ["a:enter", "b:enter", `a:end ${Code.PERMISSION_DENIED}`]);
  });

  it("the server's steps authenticate, check the role and charge the quota", async () => {
    const dir = await mkdtemp(join(tmpdir(), "aiaas-mw-"));
    const keys = await KeyStore.open(join(dir, "keys.json"));
    try {
      const reader = await keys.create({ tenant: "acme", roles: ["predict"], name: "r" });
      const quotas = new Quotas({ requestsPerSecond: 1000, burst: 1000, maxInFlight: 1, maxConcurrentJobs: 1, maxTrainDataBytes: 1 << 20 }, keys);
      const auth = createAuthenticator({ keys, quotas, audit: createAuditLog(pino({ level: "silent" })) });
      const steps = serverMiddleware(auth, pino({ level: "silent" }));
      const predict = composeMiddleware(steps, { method: "Predict", role: "predict", streaming: false });
      const train = composeMiddleware(steps, { method: "GetJob", role: "train", streaming: false });
      const codeOf = (f: () => unknown): number | undefined => {
        try {
          f();
          return undefined;
        } catch (error) {
          return (error as ServerError).code;
        }
      };
      assert.equal(codeOf(() => predict(contextWith())), Code.UNAUTHENTICATED, "no key");
      assert.equal(codeOf(() => predict(contextWith("Bearer nope"))), Code.UNAUTHENTICATED, "a bad key");
      assert.equal(codeOf(() => train(contextWith(`Bearer ${reader.token}`))), Code.PERMISSION_DENIED, "a role the key lacks");
      const context = contextWith(`Bearer ${reader.token}`);
      const end = predict(context);
      assert.equal(context.caller.tenant, "acme");
      assert.equal(context.fairnessKey, "acme");
      assert.equal(codeOf(() => predict(contextWith(`Bearer ${reader.token}`))), Code.RESOURCE_EXHAUSTED, "over maxInFlight 1 while the first call runs");
      end(Code.OK);
      const again = predict(contextWith(`Bearer ${reader.token}`));
      again(Code.OK);
      const stream = composeMiddleware(steps, { method: "PredictStream", role: "predict", streaming: true });
      const streamContext = contextWith(`Bearer ${reader.token}`);
      const endStream = stream(streamContext);
      streamContext.checkMessage();
      await keys.revoke(reader.key.id);
      assert.equal(codeOf(() => streamContext.checkMessage()), Code.UNAUTHENTICATED, "a key revoked mid-stream is refused at its next message");
      endStream(Code.UNAUTHENTICATED);
    } finally {
      keys.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
