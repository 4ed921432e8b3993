// An Open Inference Protocol client that did not come from this repository: Python with Debian's grpcio,
// stubs generated from proto/inference by grpc_tools at test time (.ci/run installs python3-grpcio and
// python3-grpc-tools; without them this test is skipped and says so).
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { affineModel } from "./support/fixtures.js";
import { startHarness, type Harness } from "./support/harness.js";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;

function findPython(): string | undefined {
  for (const python of ["/usr/bin/python3", "python3"]) {
    try {
      execFileSync(python, ["-c", "import grpc, grpc_tools"], { stdio: "ignore" });
      return python;
    } catch {
      // next candidate
    }
  }
  return undefined;
}
const python = findPython();
const skip = python ? false : "no python3 with grpcio and grpc_tools (Debian: apt-get install python3-grpcio python3-grpc-tools)";

describe("Open Inference Protocol from a Python grpcio client", { skip }, () => {
  let h: Harness;
  let stubs: string;
  before(async () => {
    h = await startHarness({ affine: { model: affineModel() } });
    stubs = await mkdtemp(join(tmpdir(), "aiaas-pystubs-"));
    await run(python!, ["-m", "grpc_tools.protoc", "-I", "proto", `--python_out=${stubs}`, `--grpc_python_out=${stubs}`, "inference/grpc_service.proto", "inference/model_config.proto"], { cwd: root });
  });
  after(async () => {
    await h.close();
    await rm(stubs, { recursive: true, force: true });
  });

  it("reads metadata, infers raw and typed, and streams with one bad request among good ones", async () => {
    const { stdout } = await run(python!, [join(root, "test/python/oip_client.py"), stubs, h.server.address]);
    const out = JSON.parse(stdout);
    assert.deepEqual(out.metadata, { platform: "onnxruntime_onnx", inputs: [["x", "FP32", [-1, 4]]] });
    assert.deepEqual(out.raw, { id: "py-raw", outputs: ["y", "z"], y: [3, 6, 9, 12] });
    assert.deepEqual(out.typed, { outputs: ["z"], z: [0, 2, 4, 6] });
    assert.match(out.stream.s2, /^INVALID_ARGUMENT: .*dimension 1 must be 4/);
    for (const id of ["s0", "s1", "s3", "s4"]) assert.equal(out.stream[id], "", `${id} succeeded`);
    assert.equal(out.missing, "NOT_FOUND");
  });
});
