// `aiaas serve --processes 2` as a real process tree, on the embedded database its primary serves and on a
// PostgreSQL database: two serving processes on one port under a primary that serves the operations port for
// both (metrics merged), restarts one killed with kill -9 and drains both on SIGTERM. The PostgreSQL run
// skips, saying so, without a reachable server.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { createClient, Tensor } from "@aiaas/sdk";
import { affineModel, writeRepository } from "./support/fixtures.js";
import { pgSkip, testDatabase } from "./support/postgres.js";

const root = new URL("..", import.meta.url).pathname;
/** A test that hangs fails instead of holding up the run. */
const LIMIT = { timeout: 120_000 };

for (const database of ["embedded", "postgres"] as const) {
describe(`a pool of serving processes (--processes 2, ${database} database)`, { skip: database === "postgres" ? pgSkip : false }, () => {
  let dir = "";
  let drop = async (): Promise<void> => undefined;
  let primary: ChildProcess;
  let address = "";
  let httpPort = 0;
  const lines: string[] = [];

  before(async () => {
    const db = database === "postgres" ? await testDatabase() : undefined;
    if (db) drop = db.drop;
    dir = await mkdtemp(join(tmpdir(), "aiaas-pool-"));
    await writeRepository(join(dir, "models"), { affine: { model: affineModel() } });
    primary = spawn(
      process.execPath,
      ["server/dist/bin/aiaas.js", "serve", "--models", join(dir, "models"), "--state-dir", join(dir, "state"), ...(db ? ["--database-url", db.url] : []), "--processes", "2", "--host", "127.0.0.1", "--port", "0", "--http-port", "0", "--providers", "cpu"],
      { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    );
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: primary.stdout! }).on("line", (line) => {
        lines.push(line);
        const entry = JSON.parse(line) as { msg: string; address?: string; httpPort?: number };
        if (entry.httpPort) httpPort = entry.httpPort;
        if (entry.msg.includes("with 2 processes")) {
          address = entry.address!;
          resolve();
        }
      });
      primary.once("exit", (code) => reject(new Error(`the pool exited with ${code}`)));
      primary.stderr!.on("data", (d: Buffer) => process.stderr.write(`# pool stderr: ${d}`));
    });
  });

  after(async () => {
    primary.kill("SIGKILL");
    await drop();
    await rm(dir, { recursive: true, force: true });
  });

  const get = async (path: string): Promise<{ status: number; text: string }> => {
    const res = await fetch(`http://127.0.0.1:${httpPort}${path}`);
    return { status: res.status, text: await res.text() };
  };

  it("serves one port from both processes; the primary's operations port speaks for both, metrics merged", LIMIT, async () => {
    assert.equal(JSON.parse((await get("/v2/health/ready")).text).ready_processes, 2);
    // Each client is its own connection; the primary hands connections to the processes in turn.
    const clients = Array.from({ length: 16 }, () => createClient({ address, channelOptions: { "grpc.use_local_subchannel_pool": 1 } }));
    try {
      for (const client of clients) {
        const res = await client.predict("affine", { x: Tensor.float32([1, 4], [1, 1, 1, 1]) });
        assert.deepEqual([...(res.outputs.y!.data as Float32Array)], [3, 4, 5, 6]);
      }
    } finally {
      for (const c of clients) c.close();
    }
    const metrics = (await get("/metrics")).text;
    const served = metrics.split("\n").filter((l) => l.startsWith("aiaas_request_count") && l.includes('model="affine"'));
    assert.ok(served.some((l) => l.includes(`process="0"`)) && served.some((l) => l.includes(`process="1"`)), `both processes served:\n${metrics.split("\n").filter((l) => l.includes("rpc_count") || l.includes("connections")).join("\n")}`);
    assert.equal(metrics.split("\n").filter((l) => l.startsWith("# TYPE aiaas_request_count_total ")).length, 1, "one TYPE line per family");
  });

  it("the console's API through the primary: calls reach a process, and the traffic stream is both processes' merged", LIMIT, async () => {
    const post = (method: string, signal?: AbortSignal) =>
      fetch(`http://127.0.0.1:${httpPort}/api/aiaas.v1.${method}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}", signal });
    const listed = (await (await post("Models/ListModels")).json()) as { models: { name: string }[] };
    assert.deepEqual(listed.models.map((m) => m.name), ["affine"]);
    const page = await fetch(`http://127.0.0.1:${httpPort}/`);
    assert.match(await page.text(), /aiaas console/);
    // The 16 predictions of the first test went to both processes: the merged samples count all 16.
    const abort = new AbortController();
    const res = await post("Models/WatchTraffic", abort.signal);
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    let counted = 0;
    let buffer = "";
    const decoder = new TextDecoder();
    const timer = setTimeout(() => abort.abort(), 20_000);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const data = /^data: (.*)$/m.exec(buffer.slice(0, end))?.[1];
          buffer = buffer.slice(end + 2);
          const sample = data ? (JSON.parse(data) as { intervalSeconds: number; versions?: { model: string; requestsPerSecond: number }[] }) : undefined;
          for (const v of sample?.versions ?? []) if (v.model === "affine") counted += v.requestsPerSecond * sample!.intervalSeconds;
        }
        if (Math.round(counted) >= 16) break;
      }
    } catch {
      // aborted after 20 s: the count below says what arrived
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    assert.equal(Math.round(counted), 16, "every request of both processes, counted once");
  });

  it("a serving process killed with kill -9 is started again and the pool is ready again; probes during the kill all get answers", LIMIT, async () => {
    const children = execFileSync("pgrep", ["-P", String(primary.pid)]).toString().trim().split("\n").map(Number);
    assert.equal(children.length, 2);
    // Probes hammer the primary across the kill: a probe sent to the dying process (its channel closed, its exit
    // not yet seen) once took the primary down with an unheard EPIPE.
    let probing = true;
    const statuses: number[] = [];
    const probe = async (): Promise<void> => {
      while (probing) statuses.push((await get("/v2/health/ready")).status);
    };
    const probes = Array.from({ length: 8 }, probe);
    const killedAt = Date.now();
    process.kill(children[0]!, "SIGKILL");
    let sawNotReady = false;
    try {
      for (;;) {
        const ready = (await get("/v2/health/ready")).status === 200;
        if (!ready) sawNotReady = true;
        if (ready && sawNotReady) break;
        if (Date.now() - killedAt > 20_000) assert.fail("the pool was not ready again within 20 s");
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      probing = false;
      await Promise.all(probes);
    }
    assert.deepEqual([...new Set(statuses)].sort(), [200, 503], "every probe was answered, ready or not");
    assert.ok(lines.some((l) => l.includes("starting it again")), "the primary said it restarts the process");
    const client = createClient({ address });
    try {
      assert.equal((await client.predict("affine", { x: Tensor.float32([1, 4], [0, 0, 0, 0]) })).version, "1");
    } finally {
      client.close();
    }
    console.log(`# a killed serving process: the pool was ready again ${Date.now() - killedAt} ms after kill -9 (${statuses.length} probes meanwhile)`);
  });

  it("SIGTERM drains both processes and the primary exits 0", LIMIT, async () => {
    const children = execFileSync("pgrep", ["-P", String(primary.pid)]).toString().trim().split("\n").map(Number);
    const exited = new Promise<number | null>((resolve) => primary.once("exit", (code) => resolve(code)));
    primary.kill("SIGTERM");
    assert.equal(await exited, 0);
    for (const pid of children) assert.throws(() => process.kill(pid, 0), "the serving processes are gone");
  });
});
}
