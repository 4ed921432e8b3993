"""PyTorch reference for the training engine's cross-checks (developer tool, not part of the product).

Reads a tensor bundle written by scripts/torch-fixtures.ts (architecture spec, initial parameters, batches),
builds the same architecture with torch.nn modules, and writes the loss, every parameter gradient and the
parameters after a few optimizer steps. Run: python3 scripts/torch_reference.py IN.bin OUT.bin
With "mnist IN.bin OUT.json" it trains the seed CNN on exported digits and writes held-out accuracy per epoch.
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn


def read_bundle(path):
    with open(path, "rb") as f:
        buf = f.read()
    assert buf[:4] == b"AIAB", path
    (n,) = struct.unpack_from("<I", buf, 4)
    header = json.loads(buf[8 : 8 + n].decode())
    base = 8 + n
    tensors = {}
    for e in header["tensors"]:
        dtype = np.int64 if e["type"] == "int64" else np.float32
        arr = np.frombuffer(buf, dtype=dtype, count=e["bytes"] // np.dtype(dtype).itemsize, offset=base + e["offset"])
        tensors[e["name"]] = torch.from_numpy(arr.reshape(e["dims"]).copy())
    return header["meta"], tensors


def write_bundle(path, meta, tensors):
    entries, blobs, offset = [], [], 0
    for name, t in tensors.items():
        a = t.detach().cpu().numpy()
        kind = "int64" if a.dtype == np.int64 else "float32"
        a = a.astype(np.int64 if kind == "int64" else np.float32)
        raw = a.tobytes()
        entries.append({"name": name, "type": kind, "dims": list(a.shape), "offset": offset, "bytes": len(raw)})
        padded = raw + b"\0" * ((8 - len(raw) % 8) % 8)
        blobs.append(padded)
        offset += len(padded)
    header = json.dumps({"meta": meta, "tensors": entries}).encode()
    header += b" " * ((8 - (8 + len(header)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(b"AIAB" + struct.pack("<I", len(header)) + header + b"".join(blobs))


class LastStepRNN(nn.RNN):
    def __init__(self, inputs, units, return_sequences):
        super().__init__(inputs, units, batch_first=True, nonlinearity="tanh")
        self.return_sequences = return_sequences

    def forward(self, x):
        out, _ = super().forward(x)
        return out if self.return_sequences else out[:, -1]


class SelfAttention(nn.MultiheadAttention):
    def forward(self, x):
        return super().forward(x, x, x, need_weights=False)[0]


class MeanPool(nn.Module):
    def forward(self, x):
        return x.mean(dim=1)


def build(spec):
    shape = list(spec["input"]["dims"])
    layers = []
    for layer in spec["layers"]:
        t = layer["type"]
        if t == "conv2d":
            k, s = layer["kernel"], layer.get("stride", 1)
            p = layer.get("padding", 0)
            p = (k - 1) // 2 if p == "same" else 0 if p == "valid" else p
            m = nn.Conv2d(shape[0], layer["filters"], k, stride=s, padding=p)
            shape = [layer["filters"], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1]
        elif t in ("maxpool2d", "avgpool2d"):
            k = layer["size"]
            s = layer.get("stride", k)
            m = nn.MaxPool2d(k, s) if t == "maxpool2d" else nn.AvgPool2d(k, s)
            shape = [shape[0], (shape[1] - k) // s + 1, (shape[2] - k) // s + 1]
        elif t == "flatten":
            m = nn.Flatten()
            shape = [int(np.prod(shape))]
        elif t == "dense":
            m = nn.Linear(shape[-1], layer["units"])
            shape = shape[:-1] + [layer["units"]]
        elif t in ("relu", "tanh", "sigmoid", "gelu"):
            m = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU}[t]()
        elif t == "dropout":
            m = nn.Dropout(layer["rate"])
        elif t == "embedding":
            m = nn.Embedding(layer["vocab"], layer["dim"])
            shape = shape + [layer["dim"]]
        elif t == "rnn":
            m = LastStepRNN(shape[-1], layer["units"], layer.get("returnSequences", False))
            shape = [shape[0], layer["units"]] if layer.get("returnSequences", False) else [layer["units"]]
        elif t == "attention":
            m = SelfAttention(shape[-1], layer["heads"], batch_first=True)
        elif t == "layernorm":
            m = nn.LayerNorm(shape[-1], eps=layer.get("epsilon", 1e-5))
        elif t == "transformer":
            m = nn.TransformerEncoderLayer(
                shape[-1], layer["heads"], layer["feedForward"], dropout=layer.get("dropout", 0.0),
                activation=layer.get("activation", "relu"), batch_first=True)
        elif t == "meanpool":
            m = MeanPool()
            shape = shape[1:]
        else:
            raise ValueError(f"unknown layer {t}")
        layers.append(m)
    return nn.Sequential(*layers)


def load(model, tensors):
    state = {k[len("param:"):]: v for k, v in tensors.items() if k.startswith("param:")}
    model.load_state_dict(state, strict=True)


def optimizer(spec, params, lr):
    wd = spec.get("weightDecay", 0.0)
    if spec["type"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=spec.get("momentum", 0.0), weight_decay=wd, nesterov=spec.get("nesterov", False))
    cls = torch.optim.Adam if spec["type"] == "adam" else torch.optim.AdamW
    return cls(params, lr=lr, betas=(spec.get("beta1", 0.9), spec.get("beta2", 0.999)), eps=spec.get("epsilon", 1e-8), weight_decay=wd)


def main(src, dst):
    torch.manual_seed(0)
    meta, tensors = read_bundle(src)
    spec = meta["spec"]
    loss_fn = nn.CrossEntropyLoss()
    out = {}
    model = build(spec)
    load(model, tensors)
    model.train()
    loss = loss_fn(model(tensors["batch0.input"]), tensors["batch0.labels"])
    loss.backward()
    for name, p in model.named_parameters():
        out[f"grad:{name}"] = p.grad
    result = {"loss": loss.item(), "torch": torch.__version__, "optimizers": {}}
    for opt in meta["optimizers"]:
        model = build(spec)
        load(model, tensors)
        model.train()
        o = optimizer(opt["spec"], model.parameters(), opt["lr"])
        losses = []
        for k in range(meta["steps"]):
            o.zero_grad()
            loss = loss_fn(model(tensors[f"batch{k}.input"]), tensors[f"batch{k}.labels"])
            loss.backward()
            o.step()
            losses.append(loss.item())
        result["optimizers"][opt["name"]] = {"losses": losses}
        for name, p in model.named_parameters():
            out[f"{opt['name']}:{name}"] = p
    write_bundle(dst, result, out)




def mnist(src, dst):
    """Trains the seed CNN on the exported digits with the exported init and epoch order; writes accuracies."""
    import time
    meta, tensors = read_bundle(src)
    torch.set_num_threads(meta["threads"])
    model = build(meta["spec"])
    load(model, tensors)
    o = torch.optim.Adam(model.parameters(), lr=meta["lr"])
    loss_fn = nn.CrossEntropyLoss()
    x, y = tensors["train.images"], tensors["train.labels"]
    tx, ty = tensors["test.images"], tensors["test.labels"]
    b = meta["batch"]
    epochs = []
    for epoch in range(meta["epochs"]):
        order = tensors["orders"][epoch]
        model.train()
        started = time.perf_counter()
        total = 0.0
        n = 0
        for s in range(0, x.shape[0] - b + 1, b):
            rows = order[s : s + b]
            o.zero_grad()
            loss = loss_fn(model(x[rows]), y[rows])
            loss.backward()
            o.step()
            total += loss.item()
            n += 1
        seconds = time.perf_counter() - started
        model.eval()
        with torch.no_grad():
            correct = (model(tx).argmax(1) == ty).sum().item()
        epochs.append({"epoch": epoch + 1, "trainLoss": total / n, "heldOutAccuracy": correct / tx.shape[0], "examplesPerSecond": n * b / seconds})
        print(json.dumps(epochs[-1]), flush=True)
    with open(dst, "w") as f:
        json.dump({"torch": torch.__version__, "threads": meta["threads"], "epochs": epochs}, f, indent=2)
        f.write("\n")


def blas_info():
    """The BLAS this process loaded: its library, and for OpenBLAS its kernel (core) and thread count."""
    import ctypes
    libs = sorted({line.split()[-1] for line in open("/proc/self/maps") if "blas" in line.split()[-1]})
    info = {"libraries": libs}
    for path in libs:
        if "openblas" in path:
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            info.update(core=lib.openblas_get_corename().decode(), threads=lib.openblas_get_num_threads(), config=lib.openblas_get_config().decode())
    return info


def bench_server(src, steps):
    """`npm run bench:train`'s PyTorch side, a process per configuration (its thread and BLAS environment fixed
    at spawn): the seed CNN with the engine's initial weights on the engine's batches, in turn. Prints one JSON line of
    what it runs on, then answers each "round" line with the examples/s of `steps` train steps, and a
    "profile" line with the top ops of a profiled run."""
    import resource
    import time
    meta, t = read_bundle(src)
    threads = int(os.environ["OMP_NUM_THREADS"])
    torch.set_num_threads(threads)
    model = build(meta["spec"])
    load(model, t)
    o = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = t["x"], t["y"]
    batch = 64
    position = [0]

    def step():
        # The batches in turn, in the engine's order.
        k = position[0] % (x.shape[0] // batch)
        position[0] += 1
        o.zero_grad()
        loss_fn(model(x[k * batch:(k + 1) * batch]), y[k * batch:(k + 1) * batch]).backward()
        o.step()

    step()  # first-call setup outside any round
    position[0] = 0
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_info(),
                      "malloc": {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")},
                      "parallel_info": torch.__config__.parallel_info()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "round":
            # Minor page faults show glibc handing out fresh mmap'd (kernel-zeroed) pages for intermediates.
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.perf_counter()
            for _ in range(steps):
                step()
            rate = steps * batch / (time.perf_counter() - started)
            faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / steps
            print(json.dumps({"rate": rate, "minor_faults_per_step": faults}), flush=True)
        elif line.strip() == "profile":
            from torch.profiler import profile, ProfilerActivity
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                for _ in range(steps):
                    step()
            top = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
            print(json.dumps({"profile": [{"op": e.key, "self_ms_per_step": e.self_cpu_time_total / 1000 / steps} for e in top]}), flush=True)


def init_quantiles(dst):
    """PyTorch's own initial weights for each architecture on stdin ({name: spec}): per parameter, the 99
    percentiles of its values pooled over 20 seeds, for the test that the engine initialises as
    torch.nn.Sequential does (test/layer-init.test.ts)."""
    specs = json.load(sys.stdin)
    out = {"torch": torch.__version__, "seeds": 20, "models": {}}
    for name, spec in specs.items():
        pooled = {}
        for seed in range(20):
            torch.manual_seed(seed)
            for pname, p in build(spec).named_parameters():
                pooled.setdefault(pname, []).append(p.detach().reshape(-1))
        q = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
        out["models"][name] = {
            pname: {"count": int(sum(v.numel() for v in vs)), "percentiles": torch.quantile(torch.cat(vs).double(), q).tolist()}
            for pname, vs in pooled.items()
        }
    with open(dst, "w") as f:
        json.dump(out, f)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "bench":
        bench_server(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "init":
        init_quantiles(sys.argv[2])
    elif sys.argv[1] == "mnist":
        mnist(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
