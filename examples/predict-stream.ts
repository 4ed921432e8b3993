// Streaming: send many single-digit requests over one PredictStream and print the throughput.
//   npm start
//   npm run example:predict-stream            (EXAMPLE_COUNT=2000 by default)
import { createClient, Tensor, type StreamRequest } from "@aiaas/sdk";
import { loadMnist } from "../scripts/mnist-data.js";

const client = createClient({ address: process.env.AIAAS_ADDRESS ?? "localhost:50051" });
const model = process.env.EXAMPLE_MODEL ?? "mnist-linear";
const { test } = loadMnist();
const count = Number(process.env.EXAMPLE_COUNT ?? 2000);

// A generator of requests: the SDK streams them as the server takes them.
function* requests(): Generator<StreamRequest> {
  for (let i = 0; i < count; i++) {
    const n = i % test.count;
    yield { id: String(n), model, inputs: { image: Tensor.float32([1, 784], test.images.subarray(n * 784, n * 784 + 784)) }, outputs: ["logits"] };
  }
}

const started = performance.now();
let answered = 0;
let correct = 0;
let failed = 0;
for await (const result of client.predictStream(requests())) {
  answered++;
  if (!result.ok) {
    failed++;
    console.error(`request ${result.id}: ${result.error.message}`);
    continue;
  }
  const logits = result.outputs.logits.data as Float32Array;
  if (logits.indexOf(Math.max(...logits)) === test.labels[Number(result.id)]) correct++;
}
const seconds = (performance.now() - started) / 1000;
console.log(`${answered} predictions in ${seconds.toFixed(2)} s: ${(answered / seconds).toFixed(0)} per second, ${failed} failed`);
console.log(`accuracy ${((100 * correct) / Math.max(1, answered - failed)).toFixed(1)}% (${model})`);
client.close();
