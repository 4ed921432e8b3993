// Fine-tuning models exported by torch.onnx.export (opset 14, 15, 17): a Conv/Gemm CNN, MatMul-based
// attention, and a 2-layer nn.TransformerEncoder. Fixtures: scripts/torch_export_fixtures.py.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ort from "onnxruntime-node";
import { buildGradientModel, buildTrainProgram } from "../server/src/training/engine/train-program.js";
import { createTrainRunner } from "../server/src/training/engine/train-runner.js";
import { decodeModel, encodeModel } from "../server/src/training/onnx/model-file.js";
import { Graph } from "../server/src/training/onnx/graph.js";
import { foldConstants } from "../server/src/training/onnx/constant-folding.js";
import { bakeWeights } from "../server/src/training/engine/train-program.js";
import { readBundle } from "../server/src/training/tensor-bundle.js";
import { createClient, Tensor } from "@aiaas/sdk";
import { startHarness } from "./support/harness.js";

const dir = join(import.meta.dirname, "fixtures", "torch-export");
const LOSS = { kind: "cross-entropy", output: "logits" } as const;

const FIXTURES = ["cnn", "attention", "attention-static", "transformer", "transformer-shared", "tied", "used-twice", "resnet", "mobilenet", "resnet-any-size", "old-cnn", "rnn", "lstm", "gru", "decoder"];

/** Runs the gradient model on the fixture's batch and compares every gradient with torch's `${prefix}<param>`. */
async function checkGradients(
  t: { diagnostic(m: string): void },
  name: string,
  prefix: "grad:" | "untied:" | "evalgrad:",
  options: { untieSharedParameters?: boolean; freezeBatchnorm?: boolean } = {},
): Promise<void> {
  const bytes = readFileSync(join(dir, `${name}.onnx`));
  const torch = readBundle(join(dir, `${name}.bin`));
  const input = torch.tensors.get("input")!;
  const labels = torch.tensors.get("labels")!;
  const { model, params, statistics } = buildGradientModel(decodeModel(bytes), { loss: LOSS, ...options });
  const expected = [...torch.tensors.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  assert.deepEqual([...params].sort(), [...expected].sort(), "the parameters trained are the ones torch has gradients for");
  const session = await ort.InferenceSession.create(encodeModel(model));
  const out = await session.run({
    input: new ort.Tensor(input.type, input.data.slice() as Float32Array, [...input.dims]),
    labels: new ort.Tensor("int64", labels.data.slice() as BigInt64Array, [...labels.dims]),
  });
  const expectedLoss = (prefix === "evalgrad:" ? torch.meta.eval_loss : torch.meta.loss) as number;
  assert.ok(Math.abs(Number(out.loss!.data[0]) - expectedLoss) < 1e-5, `loss ${out.loss!.data[0]} vs ${expectedLoss}`);
  let worst = 0;
  const globalScale = Math.max(...params.map((p) => (torch.tensors.get(`${prefix}${p}`)!.data as Float32Array).reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  for (const p of params) {
    const a = out[`grad.${p}`]!.data as Float32Array;
    const e = torch.tensors.get(`${prefix}${p}`)!.data as Float32Array;
    // A key bias has a true gradient of 0 under softmax: both sides hold float noise there, so the scale has a
    // floor at 1e-3 of the model's largest gradient.
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-3 * globalScale);
    const err = a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i]!)), 0) / scale;
    const largest = (v: Float32Array): number => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    if (largest(e) < 1e-5 * globalScale) {
      // A structurally zero gradient (a conv bias before BatchNorm, which subtracts it again): both sides hold float noise.
      assert.ok(largest(a) < 1e-5 * globalScale, `gradient of ${p} should be zero: largest ${largest(a)} against ${globalScale}`);
      continue;
    }
    assert.ok(err < 1e-4, `gradient of ${p}: relative error ${err}`);
    worst = Math.max(worst, err);
  }
  // BatchNormalization in training mode: the running statistics one batch moves, as torch's train() forward does.
  const expectedStats = [...torch.tensors.keys()].filter((k) => k.startsWith("stat:")).map((k) => k.slice(5));
  assert.deepEqual([...statistics].sort(), options.freezeBatchnorm ? [] : expectedStats.sort());
  for (const s of statistics) {
    const a = out[`stat.${s}`]!.data as Float32Array;
    const e = torch.tensors.get(`stat:${s}`)!.data as Float32Array;
    const scale = e.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-6);
    const err = a.reduce((m, v, i) => Math.max(m, Math.abs(v - e[i]!)), 0) / scale;
    assert.ok(err < 1e-5, `running statistic ${s}: relative error ${err}`);
  }
  t.diagnostic(`${params.length} parameters${statistics.length ? `, ${statistics.length} running statistics` : ""}, worst relative error ${worst.toExponential(2)}`);
  await session.release();
}

for (const name of FIXTURES) {
  const opset = readBundle(join(dir, `${name}.bin`)).meta.opset;
  test(`torch export ${name} (opset ${opset}): loss and gradients of every parameter equal PyTorch's, shared ones summed over their uses`, (t) =>
    checkGradients(t, name, "grad:"),
  );
}

for (const name of ["resnet", "mobilenet"]) {
  test(`torch export ${name} with freeze_batchnorm: gradients equal PyTorch's in eval mode, running statistics fixed`, (t) =>
    checkGradients(t, name, "evalgrad:", { freezeBatchnorm: true }),
  );
}

test("untie_shared_parameters: each value the export read through Identity is its own parameter, with the gradient torch gives it", async (t) => {
  await checkGradients(t, "transformer-shared", "untied:", { untieSharedParameters: true });
});

test("a parameter read through Identity is reported as shared, its readers named, and untying makes them separate", () => {
  const forward = decodeModel(readFileSync(join(dir, "transformer-shared.onnx")));
  const torch = readBundle(join(dir, "transformer-shared.bin"));
  const expected = torch.meta.shared as Record<string, string[]>;
  const program = buildTrainProgram(forward, { loss: LOSS, optimizer: { type: "adam" } });
  for (const [root, readers] of Object.entries(expected)) {
    const entry = program.shared.find((s) => s.parameter === root);
    assert.ok(entry, `${root} is listed as shared`);
    assert.deepEqual([...entry.readAs].sort(), [...readers].sort());
    assert.ok(entry.uses > readers.length, `${root}: ${entry.uses} uses`);
  }
  assert.deepEqual(program.frozen, [], "nothing is frozen that the user did not freeze");
  const untied = buildTrainProgram(forward, { loss: LOSS, optimizer: { type: "adam" }, untieSharedParameters: true });
  const readers = Object.values(expected).flat();
  for (const r of readers) assert.ok(untied.params.some((p) => p.name === r), `${r} is a parameter of its own`);
  assert.ok(!untied.shared.some((s) => s.readAs.length > 0));
  assert.match(untied.notes.join("\n"), new RegExp(`untied ${readers.length} shared parameters`));
  // The tied embedding is one parameter with two uses (Gather and the output projection).
  const tied = buildTrainProgram(decodeModel(readFileSync(join(dir, "tied.onnx"))), { loss: LOSS, optimizer: { type: "adam" } });
  assert.deepEqual(tied.shared.find((s) => s.parameter === "embed.weight"), { parameter: "embed.weight", readAs: [], uses: 2 });
});

test("constant folding removes the Shape/Concat/Unsqueeze chains of a static export and keeps its outputs", async () => {
  const model = decodeModel(readFileSync(join(dir, "attention-static.onnx")));
  const g = Graph.fromModel(model);
  const before = g.nodes.filter((n) => ["Concat", "Unsqueeze", "Constant", "Shape", "Gather"].includes(n.opType)).length;
  const folded = foldConstants(g);
  const after = g.nodes.filter((n) => ["Concat", "Unsqueeze", "Constant", "Shape", "Gather"].includes(n.opType)).length;
  assert.ok(before > 0 && folded >= before && after === 0, `before ${before}, folded ${folded}, after ${after}`);
  const torch = readBundle(join(dir, "attention-static.bin"));
  const input = torch.tensors.get("input")!;
  const feed = { input: new ort.Tensor("float32", input.data as Float32Array, [...input.dims]) };
  const original = await ort.InferenceSession.create(encodeModel(model));
  const foldedSession = await ort.InferenceSession.create(encodeModel(g.toModel()));
  assert.deepEqual((await foldedSession.run(feed)).logits!.data, (await original.run(feed)).logits!.data);
  await original.release();
  await foldedSession.release();
});

for (const name of ["cnn", "attention", "transformer", "transformer-shared", "resnet", "mobilenet", "resnet-any-size", "old-cnn", "rnn", "lstm", "gru"]) {
  test(`torch export ${name}: fine-tunes (loss falls, the batch is learned), freezing keeps frozen weights, and the baked model serves`, async () => {
    const forward = decodeModel(readFileSync(join(dir, `${name}.onnx`)));
    const torch = readBundle(join(dir, `${name}.bin`));
    const input = torch.tensors.get("input")!;
    const labels = torch.tensors.get("labels")!;
    const host = () => ({
      input: { type: input.type, dims: [...input.dims], data: input.data.slice() },
      labels: { type: "int64" as const, dims: [...labels.dims], data: labels.data.slice() },
    });
    const unfrozen = buildTrainProgram(forward, { loss: LOSS, optimizer: { type: "adam" } });
    const all = Graph.fromModel(unfrozen.forward);
    // The first weight matrix is frozen; in a one-layer RNN that is its only input projection, which would leave
    // it a fixed random feature map, so there the recurrent weight is frozen instead.
    const firstParam = unfrozen.params.filter((p) => p.dims.length > 1)[name === "rnn" ? 1 : 0]!.name;
    const program = buildTrainProgram(forward, { loss: LOSS, optimizer: { type: "adam" }, freeze: [firstParam] });
    assert.ok(program.frozen.includes(firstParam) && !program.params.some((p) => p.name === firstParam));
    const runner = await createTrainRunner(program, { threads: 1 });
    try {
      const first = await runner.step(host(), 0.01);
      let last = first;
      for (let i = 0; i < 150; i++) last = await runner.step(host(), 0.01);
      assert.ok(last.loss < first.loss * 0.3, `loss ${first.loss} -> ${last.loss}`);
      assert.equal(last.correct, labels.data.length);
      const params = await runner.parameters();
      assert.ok(!params.has(firstParam));
      const served = bakeWeights(program.forward, params);
      // Served by a real server from a repository, as a published version is.
      const h = await startHarness({ [name]: { model: encodeModel(served) } });
      const client = createClient({ address: h.server.address });
      const batch = input.type === "int64" ? Tensor.int64([...input.dims], input.data.slice() as BigInt64Array) : Tensor.float32([...input.dims], input.data.slice() as Float32Array);
      const out = await client.predict(name, { input: batch }).finally(async () => {
        client.close();
        await h.close();
      });
      const logits = out.outputs.logits!.data as Float32Array;
      const classes = logits.length / labels.data.length;
      for (let r = 0; r < labels.data.length; r++) {
        const row = Array.from(logits.subarray(r * classes, (r + 1) * classes));
        assert.equal(BigInt(row.indexOf(Math.max(...row))), labels.data[r]);
      }
      // The frozen weight is served unchanged.
      const servedGraph = Graph.fromModel(served);
      assert.deepEqual(servedGraph.initializers.get(firstParam)!.data, all.initializers.get(firstParam)!.data);
      // BatchNormalization serves with the running statistics training moved (training mode by default).
      for (const b of program.buffers) {
        assert.notDeepEqual(servedGraph.initializers.get(b.name)!.data, all.initializers.get(b.name)!.data, `${b.name} moved`);
        assert.deepEqual(servedGraph.initializers.get(b.name)!.data, params.get(b.name)!.data);
      }
      assert.equal(program.buffers.length > 0, ["resnet", "mobilenet", "resnet-any-size", "old-cnn"].includes(name));
    } finally {
      await runner.close();
    }
  });
}
