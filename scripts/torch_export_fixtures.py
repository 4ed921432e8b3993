"""PyTorch-exported ONNX models the engine fine-tunes in its tests (developer tool, python3-torch + python3-onnx).

Writes test/fixtures/torch-export/<name>.onnx (torch.onnx.export, dynamic batch) and <name>.bin: a batch, its
labels, and torch's loss and parameter gradients for that batch, keyed by the ONNX initializer names.
Run: python3 scripts/torch_export_fixtures.py [name …]
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


class SharedEncoder(Encoder):
    """nn.TransformerEncoder as users build it: every layer a copy of one, LayerNorms at ones and zeros. The
    export merges equal initializers, so layer 1 reads layer 0's tensors (and norm biases read the zero
    out_proj bias) through Identity nodes."""

    def __init__(self):
        nn.Module.__init__(self)
        self.embed = nn.Embedding(13, 8)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)


class TiedLanguageModel(nn.Module):
    """Weight tying: the output projection is the embedding's weight; and one Linear applied twice."""

    def __init__(self, vocab=13, width=8):
        super().__init__()
        self.embed = nn.Embedding(vocab, width)
        self.mix = nn.Linear(width, width)
        self.out = nn.Linear(width, vocab, bias=False)
        self.out.weight = self.embed.weight

    def forward(self, tokens):
        h = torch.tanh(self.mix(self.embed(tokens)))
        h = torch.tanh(self.mix(h))
        return self.out(h.mean(dim=1))


class UsedTwice(nn.Module):
    """One parameter read twice in one layer."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.randn(6))
        self.fc = nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(x * self.scale + torch.tanh(x) * self.scale)


def perturb_batchnorm(model):
    """Pretrained-like BatchNorm: scales, biases and running statistics away from their initial ones and zeros."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.add_(torch.randn_like(m.weight) * 0.2)
                m.bias.add_(torch.randn_like(m.bias) * 0.2)
                m.running_mean.add_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.mul_(torch.rand_like(m.running_var) + 0.5)
    return model


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResNetish(nn.Module):
    """A ResNet-style net: conv-BN-ReLU stem, a residual block, global average pooling, a linear classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.block = BasicBlock(4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)
        perturb_batchnorm(self)

    def forward(self, x):
        x = self.block(torch.relu(self.bn(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class SqueezeExcite(nn.Module):
    def __init__(self, c, r=2):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        return x * nn.functional.hardsigmoid(self.fc2(torch.relu(self.fc1(self.pool(x)))))


class MobileNetish(nn.Module):
    """A MobileNetV3-style net: inverted residual with a depthwise conv, HardSwish, squeeze-excitation."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(4), nn.Hardswish())
        self.expand = nn.Sequential(nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.depthwise = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.BatchNorm2d(8), nn.Hardswish())
        self.se = SqueezeExcite(8)
        self.project = nn.Sequential(nn.Conv2d(8, 4, 1, bias=False), nn.BatchNorm2d(4))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, 3)
        perturb_batchnorm(self)

    def forward(self, x):
        x = self.stem(x)
        x = x + self.project(self.se(self.depthwise(self.expand(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


class OldCnn(nn.Module):
    """What older exports look like (opset 9): ReLU6 as Clip with min/max attributes, weights as Constant nodes,
    a Softmax output."""

    outputs_probabilities = True
    weights_as_constants = True

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 3)
        perturb_batchnorm(self)

    def forward(self, x):
        x = nn.functional.relu6(self.bn(self.conv(x)))
        return torch.softmax(self.fc(torch.flatten(x, 1)), dim=1)


class SequenceClassifier(nn.Module):
    """nn.RNN / nn.LSTM / nn.GRU (batch_first) and a linear classifier on the last step or the final state."""

    def __init__(self, kind, layers=1, bidirectional=False, use="last"):
        super().__init__()
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(4, 8, num_layers=layers, batch_first=True, bidirectional=bidirectional)
        self.use = use
        self.fc = nn.Linear(8 * (2 if bidirectional else 1), 3)

    def forward(self, x):
        out, state = self.rnn(x)
        if self.use == "last":
            return self.fc(out[:, -1])
        if self.use == "mean":
            return self.fc(out.mean(dim=1))
        h = state[0] if isinstance(state, tuple) else state
        return self.fc(h[-1])


class Decoder(nn.Module):
    """Upsampling paths of segmentation and detection nets: ConvTranspose, zero padding, nearest and bilinear
    Resize, PReLU, a clamp (Clip), global max pooling."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 4, 3, stride=2, padding=1)
        self.prelu = nn.PReLU(4)
        self.up = nn.ConvTranspose2d(4, 4, 2, stride=2)
        self.pad = nn.ZeroPad2d((1, 0, 1, 0))
        self.conv = nn.Conv2d(4, 4, 3)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.prelu.weight.copy_(torch.rand(4) * 0.5)

    def forward(self, x):
        x = self.prelu(self.down(x))  # 8 -> 4
        x = self.conv(self.pad(self.up(x)))  # 4 -> 8 -> 9 -> 7
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")  # 14
        x = nn.functional.interpolate(x, size=(10, 10), mode="bilinear", align_corners=False)
        x = torch.clamp(x, -0.5, 0.5)
        return self.fc(torch.flatten(nn.functional.adaptive_max_pool2d(x, 1), 1))


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


def parameter_values(m):
    """Every value that holds a parameter: each initializer, and each Identity output that reads one (directly or
    through more Identity nodes), with the initializer it reads and the names of the nodes that consume it."""
    import onnx.numpy_helper
    inits = {i.name: torch.from_numpy(onnx.numpy_helper.to_array(i).copy()) for i in m.graph.initializer}
    root = {name: name for name in inits}
    for n in m.graph.node:
        if n.op_type == "Identity" and n.input[0] in root:
            root[n.output[0]] = root[n.input[0]]
    consumers = {v: [n.name for n in m.graph.node if v in n.input] for v in root}
    return inits, root, consumers


def match(value, arr, consumers, params, taken):
    """The torch parameter (and view) a graph value holds: by name first; among equal candidates, the one whose
    module path the consuming nodes name (/encoder/layers.1/...); else the first not yet taken."""
    found = []
    for pname, p in params.items():
        for suffix, view in views(p):
            v = view(p.detach())
            if v.shape == arr.shape and torch.equal(v, arr):
                found.append((pname, suffix, view))
            elif suffix == "" and v.numel() == arr.numel() and torch.equal(v.reshape(arr.shape), arr):
                # Exported with extra unit dims (PReLU's slope as [C, 1, 1]).
                found.append((pname, "[reshaped]", (lambda shape: lambda t: t.reshape(shape))(arr.shape)))
    if not found:
        return None
    by_name = [f for f in found if f[0] == value and f[1] == ""]
    if by_name:
        return by_name[0]
    path = lambda pname: "/" + "/".join(pname.split(".")[:-1]) + "/"
    by_module = [f for f in found if any(c.startswith(path(f[0])) for c in consumers)]
    free = [f for f in (by_module or found) if (f[0], f[1]) not in taken]
    return (free or by_module or found)[0]


# torch's gate order within a recurrent weight, rearranged into ONNX's: LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h.
GATES = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def recurrent_values(m, model):
    """ONNX W, R, B of each RNN/LSTM/GRU node (the k-th is torch layer k) -> a function of torch's tensors that
    builds it: gates reordered, directions stacked, input and hidden biases concatenated."""
    rnn = next(mod for mod in model.modules() if isinstance(mod, nn.RNNBase))
    params = dict(rnn.named_parameters())
    nodes = [n for n in m.graph.node if n.op_type in GATES]
    out = {}
    for k, node in enumerate(nodes):
        order = GATES[node.op_type]
        suffixes = ["", "_reverse"] if rnn.bidirectional else [""]

        def reorder(t, order=order):
            return torch.cat([c for i in order for c in [t.chunk(len(order), 0)[i]]], 0)

        def build(kind, k=k, reorder=reorder, suffixes=suffixes):
            def get(tensors):
                if kind == "B":
                    return torch.stack([torch.cat([reorder(tensors[f"bias_ih_l{k}{s}"]), reorder(tensors[f"bias_hh_l{k}{s}"])]) for s in suffixes])
                name = "weight_ih" if kind == "W" else "weight_hh"
                return torch.stack([reorder(tensors[f"{name}_l{k}{s}"]) for s in suffixes])
            return get

        for index, kind in [(1, "W"), (2, "R"), (3, "B")]:
            if len(node.input) > index and node.input[index]:
                out[node.input[index]] = build(kind)
    return out, params


def loss_of(model, example, labels):
    """Cross-entropy on the logits; a model that outputs probabilities is scored on their log (the same value)."""
    out = model(example)
    if getattr(model, "outputs_probabilities", False):
        return nn.functional.nll_loss(torch.log(out), labels)
    return nn.functional.cross_entropy(out, labels)


def export(name, model, example, opset, dynamic=True, fold=True, labels=None):
    torch.manual_seed(0)
    path = os.path.join(OUT, f"{name}.onnx")
    model.eval()
    batchnorm = any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    # Tracing with grad enabled keeps PyTorch off its fused inference-only kernels. PRESERVE keeps BatchNorm
    # nodes (EVAL would fold them into the convolutions).
    axes = {"input": {0: "batch", 2: "height", 3: "width"} if dynamic == "spatial" else {0: "batch"}, "logits": {0: "batch"}}
    torch.onnx.export(
        model, (example,), path, opset_version=opset, input_names=["input"], output_names=["logits"],
        dynamic_axes=axes if dynamic else None, do_constant_folding=fold,
        training=torch.onnx.TrainingMode.PRESERVE if batchnorm else torch.onnx.TrainingMode.EVAL,
    )
    import onnx
    m = onnx.load(path)
    # Map ONNX values back to torch parameters by value: export renames them (onnx::MatMul_123), transposes
    # Linear weights for MatMul, splits MultiheadAttention's packed in_proj into q, k, v, and merges equal
    # tensors into one initializer that other layers read through Identity.
    params = dict(model.named_parameters())
    inits, root, consumers = parameter_values(m)
    values = {}
    taken = set()
    for value, r in root.items():
        found = match(value, inits[r], consumers[value], params, taken)
        if found:
            values[value] = found
            taken.add((found[0], found[1]))
    recurrent, rnn_params = recurrent_values(m, model) if any(n.op_type in GATES for n in m.graph.node) else ({}, {})
    for value, get in recurrent.items():
        assert torch.equal(get({k: v.detach() for k, v in rnn_params.items()}), inits[value]), value
    labels = torch.tensor([0, 2, 1, 1, 0]) if labels is None else labels
    tensors = {"input": example, "labels": labels}
    if batchnorm:
        # freeze_batchnorm's reference: gradients with BatchNorm in eval mode (running statistics fixed).
        model.zero_grad()
        eval_loss = loss_of(model, example, labels)
        eval_loss.backward()
        for value, (pname, suffix, view) in values.items():
            key = f"evalgrad:{root[value]}"
            g = view(params[pname].grad)
            tensors[key] = tensors[key] + g if key in tensors else g.clone()
        model.train()
    model.zero_grad()
    loss = loss_of(model, example, labels)
    loss.backward()
    for value, get in recurrent.items():
        tensors[f"grad:{value}"] = get({k: v.grad for k, v in rnn_params.items()})
        tensors[f"untied:{value}"] = tensors[f"grad:{value}"]
    # Training mode: batch statistics, and the running statistics one forward pass moves.
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.BatchNorm2d):
            tensors[f"stat:{mname}.running_mean"] = mod.running_mean.clone()
            tensors[f"stat:{mname}.running_var"] = mod.running_var.clone()
    shared = {}
    for value, (pname, suffix, view) in values.items():
        g = view(params[pname].grad)
        # The graph's meaning: an initializer read through Identity gets the sum over every value that reads it.
        r = root[value]
        tensors[f"grad:{r}"] = tensors[f"grad:{r}"] + g if f"grad:{r}" in tensors else g.clone()
        # Untied, as in the module: each value its own parameter with its own gradient.
        tensors[f"untied:{value}"] = g
        if value != r:
            shared.setdefault(r, []).append(value)
    meta = {
        "loss": loss.item(), "opset": opset, "torch": torch.__version__,
        "params": {k: v[0] + v[1] for k, v in values.items()}, "shared": shared,
    }
    if batchnorm:
        meta["eval_loss"] = eval_loss.item()
    write_bundle(os.path.join(OUT, f"{name}.bin"), meta, tensors)
    if getattr(model, "weights_as_constants", False):
        # As PaddleOCR's exporter writes them: every weight a Constant node, no initializers.
        constants = [onnx.helper.make_node("Constant", [], [i.name], value=i) for i in m.graph.initializer]
        nodes = constants + list(m.graph.node)
        del m.graph.initializer[:]
        del m.graph.node[:]
        m.graph.node.extend(nodes)
        onnx.save(m, path)
    covered = {v[0] for v in values.values()}
    print(name, "ops:", sorted({n.op_type for n in m.graph.node}), "values mapped:", len(values), "params covered:", len(covered), "of", len(params), "shared:", shared)


# name → (seed, build): each fixture's model is built right after its seed is set.
FIXTURES = {
    "cnn": (1, lambda: ("cnn", SmallCnn(), torch.rand(5, 1, 8, 8), 14)),
    "attention": (2, lambda: ("attention", MatMulAttention(), torch.randn(5, 4, 8), 15)),
    # Static shapes, exported without torch's folding, leave Shape -> Gather -> Concat -> Reshape chains for the IR to fold.
    "attention-static": (2, lambda: ("attention-static", MatMulAttention(), torch.randn(5, 4, 8), 15, False, False)),
    "transformer": (3, lambda: ("transformer", Encoder(), torch.randint(0, 13, (5, 6)), 17)),
    "transformer-shared": (4, lambda: ("transformer-shared", SharedEncoder(), torch.randint(0, 13, (5, 6)), 17)),
    # Unfolded, so the tie stays one initializer read by Gather and by Transpose -> MatMul (torch's folding would
    # bake the transpose into a second, untied initializer).
    "tied": (5, lambda: ("tied", TiedLanguageModel(), torch.randint(0, 13, (5, 6)), 13, True, False, torch.tensor([0, 12, 5, 7, 3]))),
    "used-twice": (6, lambda: ("used-twice", UsedTwice(), torch.randn(5, 6), 16)),
    "resnet": (7, lambda: ("resnet", ResNetish(), torch.rand(5, 1, 8, 8), 15)),
    "mobilenet": (8, lambda: ("mobilenet", MobileNetish(), torch.rand(5, 1, 8, 8), 17)),
    # Height and width left dynamic: strided convolutions' gradients cannot use static output padding.
    "resnet-any-size": (7, lambda: ("resnet-any-size", ResNetish(), torch.rand(5, 1, 8, 8), 15, "spatial")),
    "old-cnn": (9, lambda: ("old-cnn", OldCnn(), torch.rand(5, 1, 8, 8), 9)),
    "decoder": (13, lambda: ("decoder", Decoder(), torch.rand(5, 1, 8, 8), 13)),
    "rnn": (10, lambda: ("rnn", SequenceClassifier("rnn"), torch.randn(5, 6, 4), 14)),
    "lstm": (11, lambda: ("lstm", SequenceClassifier("lstm", layers=2, use="state"), torch.randn(5, 6, 4), 14)),
    "gru": (12, lambda: ("gru", SequenceClassifier("gru", bidirectional=True, use="mean"), torch.randn(5, 6, 4), 17)),
}

def finetune(src, dst):
    """PyTorch's run of the fine-tuning parity check (scripts/torch-finetune-reference.ts writes `src`): the
    fixture's module with its export-time weights, trained with Adam in the given batch order; held-out accuracy
    and loss after every epoch (BatchNorm in eval mode for them, as the engine validates)."""
    import json
    from torch_reference import read_bundle
    meta, t = read_bundle(src)
    seed, build = FIXTURES[meta["name"]]
    torch.manual_seed(seed)
    model = build()[1]
    opt = torch.optim.Adam(model.parameters(), lr=meta["learningRate"])
    loss_fn = nn.CrossEntropyLoss()

    def held_out():
        model.eval()
        with torch.no_grad():
            out = model(t["test.x"])
            if getattr(model, "outputs_probabilities", False):
                return nn.functional.nll_loss(torch.log(out), t["test.y"]).item(), out
            return loss_fn(out, t["test.y"]).item(), out

    # Before training: the test compares it with the exported model's own logits, so both sides start equal.
    initial_loss, _ = held_out()
    epochs = []
    for epoch in range(meta["epochs"]):
        model.train()
        order = t["orders"][epoch]
        total = 0.0
        for s in range(0, len(order), meta["batchSize"]):
            idx = order[s:s + meta["batchSize"]]
            opt.zero_grad()
            loss = loss_of(model, t["train.x"][idx], t["train.y"][idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        test_loss, out = held_out()
        accuracy = (out.argmax(1) == t["test.y"]).float().mean().item()
        epochs.append({"epoch": epoch + 1, "train_loss": total / len(order), "test_loss": test_loss, "test_accuracy": accuracy})
        print(meta["name"], epochs[-1])
    with open(dst, "w") as f:
        json.dump({"name": meta["name"], "torch": torch.__version__, "initial_test_loss": initial_loss, "epochs": epochs}, f, indent=1)


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--finetune":
    finetune(sys.argv[2], sys.argv[3])
    sys.exit(0)

if __name__ == "__main__":
    # Names on the command line regenerate only those fixtures.
    os.makedirs(OUT, exist_ok=True)
    for name, (seed, build) in FIXTURES.items():
        if len(sys.argv) > 1 and name not in sys.argv[1:]:
            continue
        torch.manual_seed(seed)
        export(*build())
