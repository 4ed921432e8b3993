// `aiaas keys` on the store file (how the first admin key is made) and through a running server's Admin service.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { AiaasError, Code, Tensor, createClient } from "@aiaas/sdk";
import { startServer, type RunningServer } from "@aiaas/server";
import { KeyStore } from "../server/src/auth/index.js";
import { affineModel, writeRepository } from "./support/fixtures.js";
import { aiaas } from "./support/cli.js";

/** The secret part of a token (it may itself contain "_"). */
const secretOf = (token: string): string | undefined => /^aiaas_[0-9a-f]{16}_(.+)$/.exec(token)?.[1];

const cli = aiaas;
const tokenOf = (stdout: string): string => /token \(shown once\): (\S+)/.exec(stdout)![1]!;

describe("aiaas keys", () => {
  let dir: string;
  let server: RunningServer;
  let admin: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "aiaas-cli-keys-"));
    await writeRepository(join(dir, "models"), { shared: { model: affineModel() } });
    const made = await cli("keys", "create", "--store", join(dir, "keys.json"), "--tenant", "ops", "--roles", "admin", "--name", "first admin");
    assert.equal(made.code, 0, made.stderr);
    admin = tokenOf(made.stdout);
    server = await startServer({ modelsDir: join(dir, "models"), host: "127.0.0.1", port: 0, providers: ["cpu"], logger: pino({ level: "silent" }), auth: { keysFile: join(dir, "keys.json") } });
  });
  after(async () => {
    await server.shutdown();
    await rm(dir, { recursive: true, force: true });
  });

  it("creates, lists and revokes keys through the Admin service; a revoked key stops at once", async () => {
    const made = await cli("keys", "create", "--address", server.address, "--api-key", admin, "--tenant", "acme", "--roles", "predict", "--expires-in", "30d", "--json");
    assert.equal(made.code, 0, made.stderr);
    const { key, token } = JSON.parse(made.stdout) as { key: { id: string; tenant: string; roles: string[]; state: string }; token: string };
    const id = key.id;
    assert.deepEqual([key.tenant, key.roles, key.state], ["acme", ["predict"], "active"]);
    const c = createClient({ address: server.address, apiKey: token, retry: { maxAttempts: 1 } });
    assert.equal((await c.predict("shared", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) })).version, "1");
    const listed = await cli("keys", "list", "--address", server.address, "--api-key", admin, "--tenant", "acme");
    assert.match(listed.stdout, /^ID\s+TENANT\s+ROLES\s+STATE\s+EXPIRES\s+NAME$/m, "a header row");
    assert.match(listed.stdout, new RegExp(`^${id}\\s+acme\\s+predict\\s+active\\s+20\\d\\d-`, "m"));
    const json = await cli("keys", "list", "--address", server.address, "--api-key", admin, "--tenant", "acme", "--json");
    assert.deepEqual((JSON.parse(json.stdout) as { id: string }[]).map((k) => k.id), [id]);
    assert.equal((await cli("keys", "list", "--address", server.address, "--api-key", admin, "--tenant", "nobody")).stdout.trim(), "no keys");
    assert.ok(!listed.stdout.includes(secretOf(token)!), "no secret is listed");
    const revoked = await cli("keys", "revoke", id, "--address", server.address, "--api-key", admin);
    assert.equal(revoked.code, 0, revoked.stderr);
    await assert.rejects(c.predict("shared", { x: Tensor.float32([1, 4], [1, 2, 3, 4]) }), (e) => e instanceof AiaasError && e.code === Code.UNAUTHENTICATED);
    c.close();
    const onFile = await cli("keys", "list", "--store", join(dir, "keys.json"));
    assert.match(onFile.stdout, new RegExp(`${id}\\s+acme\\s+predict\\s+revoked`));
  });

  it("a non-admin key is refused by the Admin service (exit 1); no --store or --address is a usage error (exit 2)", async () => {
    const made = await cli("keys", "create", "--store", join(dir, "keys.json"), "--tenant", "acme", "--roles", "predict", "--quiet");
    assert.match(made.stdout, /^aiaas_[0-9a-f]{16}_\S+\n$/, "--quiet prints the token alone");
    const refused = await cli("keys", "list", "--address", server.address, "--api-key", made.stdout.trim());
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /PERMISSION_DENIED: this key lacks the "admin" role/);
    const usage = await cli("keys", "list");
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /give --store FILE/);
  });
});

describe("a key store on a Kubernetes Secret volume", () => {
  it("reloads when the volume swaps its ..data symlink: a key revoked in the Secret stops at once", async () => {
    const { copyFile, mkdir, rename, symlink } = await import("node:fs/promises");
    const dir = await mkdtemp(join(tmpdir(), "aiaas-secret-"));
    try {
      // The layout the kubelet makes: keys.json -> ..data/keys.json, ..data -> ..<timestamp>/
      const source = await KeyStore.open(join(dir, "source", "keys.json"));
      const { token, key } = await source.create({ tenant: "acme", roles: ["predict"] });
      await mkdir(join(dir, "mount", "..v1"), { recursive: true });
      await copyFile(join(dir, "source", "keys.json"), join(dir, "mount", "..v1", "keys.json"));
      await symlink("..v1", join(dir, "mount", "..data"));
      await symlink("..data/keys.json", join(dir, "mount", "keys.json"));
      const mounted = await KeyStore.open(join(dir, "mount", "keys.json"), { watch: true });
      assert.equal(mounted.verify(token).ok, true);
      // The Secret is updated: a new timestamped folder, then ..data swapped to it atomically.
      await source.revoke(key.id);
      await mkdir(join(dir, "mount", "..v2"));
      await copyFile(join(dir, "source", "keys.json"), join(dir, "mount", "..v2", "keys.json"));
      await symlink("..v2", join(dir, "mount", "..data_tmp"));
      await rename(join(dir, "mount", "..data_tmp"), join(dir, "mount", "..data"));
      const until = Date.now() + 3000;
      while (mounted.verify(token).ok && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      const verdict = mounted.verify(token);
      assert.equal(verdict.ok, false);
      assert.equal(!verdict.ok && verdict.reason, "revoked key");
      mounted.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
