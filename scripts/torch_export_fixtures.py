"""PyTorch-exported ONNX models the engine fine-tunes in its tests (developer tool, python3-torch + python3-onnx).

Writes test/fixtures/torch-export/<name>.onnx (torch.onnx.export, dynamic batch) and <name>.bin: a batch, its
labels, and torch's loss and parameter gradients for that batch, keyed by the ONNX initializer names.
Run: python3 scripts/torch_export_fixtures.py
"""
import os
import sys

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(__file__))
from torch_reference import write_bundle  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "torch-export")


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(4 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv(x)))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


class MatMulAttention(nn.Module):
    """Hand-written scaled dot-product attention, as exported models spell it: MatMul, Reshape, Transpose, Softmax."""

    def __init__(self, width=8, heads=2, classes=3):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.k = nn.Linear(width, width)
        self.v = nn.Linear(width, width)
        self.out = nn.Linear(width, classes)

    def forward(self, x):
        b, t, e = x.shape
        d = e // self.heads

        def split(y):
            return y.reshape(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        w = torch.softmax(q @ k.transpose(-2, -1) / d**0.5, dim=-1)
        ctx = (w @ v).transpose(1, 2).reshape(b, t, e)
        return self.out(ctx.mean(dim=1))


class Encoder(nn.Module):
    def __init__(self, vocab=13, width=8, classes=3):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        layer = nn.TransformerEncoderLayer(width, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(width, classes)
        # TransformerEncoder deep-copies one layer, and LayerNorm starts at ones and zeros: equal tensors would be
        # exported as one shared initializer. Perturb them so every parameter stays its own.
        with torch.no_grad():
            for p in self.encoder.parameters():
                p.add_(torch.randn_like(p) * 0.05)

    def forward(self, tokens):
        return self.head(self.encoder(self.embed(tokens)).mean(dim=1))


def export(name, model, example, opset, dynamic=True, fold=True):
    torch.manual_seed(0)
    path = os.path.join(OUT, f"{name}.onnx")
    model.eval()
    # Tracing with grad enabled keeps PyTorch off its fused inference-only kernels.
    torch.onnx.export(
        model, (example,), path, opset_version=opset, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None, do_constant_folding=fold,
    )
    import onnx
    import onnx.numpy_helper
    m = onnx.load(path)
    # Map ONNX initializer names back to torch parameters by value: export renames them (onnx::MatMul_123),
    # transposes Linear weights for MatMul, and splits MultiheadAttention's packed in_proj into q, k, v.
    params = dict(model.named_parameters())

    def views(p):
        yield "", lambda t: t
        if p.dim() == 2:
            yield "^T", lambda t: t.t()
        if p.shape[0] % 3 == 0:
            n = p.shape[0] // 3
            for k in range(3):
                yield f"[{k}/3]", (lambda k: lambda t: t[k * n:(k + 1) * n])(k)
                if p.dim() == 2:
                    yield f"[{k}/3]^T", (lambda k: lambda t: t[k * n:(k + 1) * n].t())(k)

    names = {}
    for init in m.graph.initializer:
        arr = torch.from_numpy(onnx.numpy_helper.to_array(init).copy())
        for pname, p in params.items():
            for suffix, view in views(p):
                v = view(p.detach())
                if v.shape == arr.shape and torch.equal(v, arr):
                    names[init.name] = (pname, suffix, view)
    labels = torch.tensor([0, 2, 1, 1, 0])
    model.zero_grad()
    loss = nn.functional.cross_entropy(model(example), labels)
    loss.backward()
    tensors = {"input": example, "labels": labels}
    for onnx_name, (pname, suffix, view) in names.items():
        tensors[f"grad:{onnx_name}"] = view(params[pname].grad)
    meta = {"loss": loss.item(), "opset": opset, "torch": torch.__version__, "params": {k: v[0] + v[1] for k, v in names.items()}}
    write_bundle(os.path.join(OUT, f"{name}.bin"), meta, tensors)
    covered = {v[0] for v in names.values()}
    print(name, "ops:", sorted({n.op_type for n in m.graph.node}), "initializers mapped:", len(names), "params covered:", len(covered), "of", len(params))


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(1)
    export("cnn", SmallCnn(), torch.rand(5, 1, 8, 8), 14)
    torch.manual_seed(2)
    export("attention", MatMulAttention(), torch.randn(5, 4, 8), 15)
    # Static shapes, exported without torch's folding, leave Shape -> Gather -> Concat -> Reshape chains for the IR to fold.
    torch.manual_seed(2)
    export("attention-static", MatMulAttention(), torch.randn(5, 4, 8), 15, dynamic=False, fold=False)
    torch.manual_seed(3)
    export("transformer", Encoder(), torch.randint(0, 13, (5, 6)), 17)
