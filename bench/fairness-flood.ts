// The flooding tenant of bench/fairness-bench.ts, in its own process so its client work does not delay the
// measured tenant's: keeps FLOOD calls in flight until stdin closes, then prints how many it made.
import { createClient, Tensor } from "@aiaas/sdk";
import { loadMnist } from "../scripts/mnist-data.js";

const [address, apiKey, flood] = process.argv.slice(2);
const client = createClient({ address: address!, apiKey });
const image = Tensor.float32([1, 1, 28, 28], loadMnist().test.images.subarray(0, 784));
let stop = false;
let count = 0;
process.stdin.on("end", () => (stop = true)).resume();
await Promise.all(
  Array.from({ length: Number(flood) }, async () => {
    while (!stop) {
      await client.predict("mnist-cnn", { image }).catch(() => undefined);
      count++;
    }
  }),
);
console.log(count);
client.close();
