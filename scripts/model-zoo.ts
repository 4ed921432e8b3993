// The demo models of the embedded repository, built from TypeScript with the project's ONNX graph IR.
import type { ModelProto } from "onnx-buf";
import { createGraphBuilder } from "../server/src/training/onnx/index.js";
import { seededRandom, uniformInit } from "./seeded-random.js";
import type { MnistSplit } from "./mnist-data.js";

/**
 * The seed's MNIST CNN: [N,1,28,28] -> Conv 1->32 3x3 pad 1, ReLU, MaxPool 2 -> Conv 32->64 3x3 pad 1, ReLU,
 * MaxPool 2 -> Gemm 3136->128, ReLU -> Gemm 128->10. Outputs logits and softmax probabilities.
 * Weights use PyTorch's default init from a fixed seed (training replaces them).
 */
export function buildMnistCnn(seed = 7): ModelProto {
  const random = seededRandom(seed);
  const g = createGraphBuilder();
  const x = g.input("image", "float32", ["batch", 1, 28, 28]);
  const conv = (input: string, name: string, cin: number, cout: number): string => {
    const fanIn = cin * 9;
    g.initializer(`${name}.weight`, { type: "float32", dims: [cout, cin, 3, 3], data: uniformInit(random, cout * cin * 9, fanIn) });
    g.initializer(`${name}.bias`, { type: "float32", dims: [cout], data: uniformInit(random, cout, fanIn) });
    const [c] = g.node("Conv", [input, `${name}.weight`, `${name}.bias`], { attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] } });
    const [r] = g.node("Relu", [c]);
    const [p] = g.node("MaxPool", [r], { attrs: { kernel_shape: [2, 2], strides: [2, 2] } });
    return p;
  };
  const dense = (input: string, name: string, fanIn: number, out: number): string => {
    g.initializer(`${name}.weight`, { type: "float32", dims: [out, fanIn], data: uniformInit(random, out * fanIn, fanIn) });
    g.initializer(`${name}.bias`, { type: "float32", dims: [out], data: uniformInit(random, out, fanIn) });
    return g.node("Gemm", [input, `${name}.weight`, `${name}.bias`], { attrs: { transB: 1 } })[0];
  };
  const p2 = conv(conv(x, "conv1", 1, 32), "conv2", 32, 64);
  const [flat] = g.node("Flatten", [p2], { attrs: { axis: 1 } });
  const [h] = g.node("Relu", [dense(flat, "fc1", 3136, 128)]);
  const logits = dense(h, "fc2", 128, 10);
  g.node("Identity", [logits], { outputs: ["logits"] });
  g.node("Softmax", [logits], { outputs: ["probabilities"], attrs: { axis: 1 } });
  g.output("logits", "float32", ["batch", 10]);
  g.output("probabilities", "float32", ["batch", 10]);
  return g.build("mnist_cnn", { docString: "MNIST CNN (seed architecture), untrained PyTorch-style init" });
}

/** One Gemm 784->10 over flattened images, plus softmax. */
export function buildMnistLinear(weight: Float32Array, bias: Float32Array, doc: string): ModelProto {
  const g = createGraphBuilder();
  g.input("image", "float32", ["batch", 784]);
  g.initializer("fc.weight", { type: "float32", dims: [10, 784], data: weight });
  g.initializer("fc.bias", { type: "float32", dims: [10], data: bias });
  g.node("Gemm", ["image", "fc.weight", "fc.bias"], { outputs: ["logits"], attrs: { transB: 1 } });
  g.node("Softmax", ["logits"], { outputs: ["probabilities"], attrs: { axis: 1 } });
  g.output("logits", "float32", ["batch", 10]);
  g.output("probabilities", "float32", ["batch", 10]);
  return g.build("mnist_linear", { docString: doc });
}

/**
 * Softmax regression on real digits, fitted by plain minibatch SGD so the embedded repository serves a
 * model whose answers mean something. Returns the weights and the held-out accuracy.
 */
export function fitMnistLinear(train: MnistSplit, test: MnistSplit, epochs = 8): { weight: Float32Array; bias: Float32Array; accuracy: number } {
  const weight = new Float32Array(10 * 784);
  const bias = new Float32Array(10);
  const lr = 0.1;
  const batch = 32;
  const logits = new Float64Array(10);
  const gw = new Float64Array(10 * 784);
  const gb = new Float64Array(10);
  for (let epoch = 0; epoch < epochs; epoch++) {
    for (let start = 0; start < train.count; start += batch) {
      const end = Math.min(start + batch, train.count);
      gw.fill(0);
      gb.fill(0);
      for (let n = start; n < end; n++) {
        const x = train.images.subarray(n * 784, n * 784 + 784);
        softmaxLogits(weight, bias, x, logits);
        logits[train.labels[n]] -= 1; // d(cross-entropy)/d(logits)
        for (let k = 0; k < 10; k++) {
          const d = logits[k];
          gb[k] += d;
          if (d === 0) continue;
          const row = k * 784;
          for (let i = 0; i < 784; i++) gw[row + i] += d * x[i];
        }
      }
      const scale = lr / (end - start);
      for (let i = 0; i < weight.length; i++) weight[i] -= scale * gw[i];
      for (let k = 0; k < 10; k++) bias[k] -= scale * gb[k];
    }
  }
  let correct = 0;
  for (let n = 0; n < test.count; n++) {
    softmaxLogits(weight, bias, test.images.subarray(n * 784, n * 784 + 784), logits);
    if (argmax(logits) === test.labels[n]) correct++;
  }
  return { weight, bias, accuracy: correct / test.count };
}

function softmaxLogits(weight: Float32Array, bias: Float32Array, x: Float32Array, out: Float64Array): void {
  let max = -Infinity;
  for (let k = 0; k < 10; k++) {
    let s = bias[k];
    const row = k * 784;
    for (let i = 0; i < 784; i++) s += weight[row + i] * x[i];
    out[k] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let k = 0; k < 10; k++) sum += out[k] = Math.exp(out[k] - max);
  for (let k = 0; k < 10; k++) out[k] /= sum;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}
