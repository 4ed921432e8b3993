// Quickstart: predict a few real MNIST digits with the SDK.
//   npm start                      (in one terminal: serves models/)
//   npm run example:quickstart     (in another)
import { createClient, Tensor } from "@aiaas/sdk";
import { loadMnist } from "../scripts/mnist-data.js";

const client = createClient({ address: process.env.AIAAS_ADDRESS ?? "localhost:50051" });
const { test } = loadMnist();
const count = 8;

// One request with 8 rows: the server returns 8 rows of probabilities.
const images = Tensor.float32([count, 784], test.images.subarray(0, count * 784));
const result = await client.predict<"probabilities">("mnist-linear", { image: images }, { outputs: ["probabilities"] });

const probabilities = result.outputs.probabilities.data as Float32Array;
let correct = 0;
for (let i = 0; i < count; i++) {
  const row = probabilities.subarray(i * 10, i * 10 + 10);
  const top = row.indexOf(Math.max(...row));
  if (top === test.labels[i]) correct++;
  console.log(`digit ${i}: label ${test.labels[i]}, predicted ${top} (p = ${row[top].toFixed(3)})`);
}
console.log(`${correct}/${count} correct, served by mnist-linear version ${result.version}`);
client.close();
