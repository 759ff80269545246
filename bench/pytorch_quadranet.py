"""QuadraNets in PyTorch, with the module names of the public QuadraNet code,
as the peer of qdsl's generated code.

    pytorch_quadranet.py compare --model quadranet36_t --weights W.safetensors \
        --input X.npy --expect Y.npy
        Loads a PyTorch-format weights file (from `qdsl weights export`), runs
        the model on X (NHWC float32) and reports the largest difference of
        its logits from Y (qdsl's), normwise: max|y - torch| / max|torch|.

    pytorch_quadranet.py grad --model quadranet36_t --weights W.safetensors \
        --input X.npy --labels L.npy --expect G.safetensors
        One training step's loss and the gradient of every parameter, against
        qdsl's (`qdsl run --train`, exported to PyTorch names with `qdsl
        weights export`; the loss is in its metadata): the largest normwise
        difference over the parameters, max|g - torch| / max|torch| each.

    pytorch_quadranet.py bench --model quadranet36_t --batch 1 8
        Inference throughput in PyTorch's best CPU setting (see below).

    pytorch_quadranet.py qdwconv --shape 8 256 14 [--kernel 7]
        The quadratic depthwise convolution alone (N, C, H = W).

PyTorch gets its best setting or the comparison means nothing: OpenBLAS's
OpenMP flavour first on the library path, tcmalloc preloaded and the faster
OpenMP wait policy (bench/benchlib.py's pytorch_env; bench/run_benchmarks.py
measures both policies), 2 threads (it defaults to 1 here), channels-last
memory layout, and the quadratic convolution as three depthwise
convolutions and addcmul. Two rewrites of the reference code keep its maths
and its parameters but not its slow paths, measured on QuadraNet36-T here:
the channels-first layer norm runs as F.layer_norm on the channels-last view
(the reference spells it out in five elementwise ops, a quarter of the time),
and the pointwise convolutions run in one of two ways, chosen by
QDSL_PEER_POINTWISE: `conv1x1` (the default), 1x1 convolutions in oneDNN on
that layout with their bias fused, or `linear`, nn.Linear over the
channels-last view (a GEMM in OpenBLAS; with the pthread flavour its own
threads fight PyTorch's OpenMP threads). The benchmark drivers measure both
in each OpenBLAS setting and keep the fastest (bench/benchlib.py SETTINGS),
for inference and for training apart.
"""
import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Architectures of the examples/ files, by file name.
MODELS = {
    "quadranet25_t": dict(dims=[64, 128, 256, 512], depths=[2, 3, 18, 2], kernels=[7] * 4,
                          block="quadra", patch=4, in_chans=3, classes=1000, size=224),
    "quadranet36_t": dict(dims=[64, 128, 256, 512], depths=[3, 3, 27, 3], kernels=[7] * 4,
                          block="quadra", patch=4, in_chans=3, classes=1000, size=224),
    "convblock36_t": dict(dims=[64, 128, 256, 512], depths=[3, 3, 27, 3], kernels=[7] * 4,
                          block="conv", patch=4, in_chans=3, classes=1000, size=224),
    "skipblock36_t": dict(dims=[64, 128, 256, 512], depths=[3, 3, 27, 3], kernels=[7] * 4,
                          block="skip", patch=4, in_chans=3, classes=1000, size=224),
    "fashion_mnist": dict(dims=[32, 64], depths=[2, 2], kernels=[5, 3], block="quadra",
                          patch=2, in_chans=1, classes=10, size=28),
}


class LayerNorm(nn.Module):
    """Layer norm over channels of an NCHW (channels_first) or NHWC tensor."""

    def __init__(self, dim, eps=1e-6, channels_first=False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps
        self.channels_first = channels_first
        self.dim = dim

    def forward(self, x):
        if not self.channels_first:
            return F.layer_norm(x, (self.dim,), self.weight, self.bias, self.eps)
        # A channels-last NCHW tensor viewed as NHWC is contiguous.
        y = F.layer_norm(x.permute(0, 2, 3, 1), (self.dim,), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class QuadraConv(nn.Module):
    """(Wa ⊛ x) ⊙ (Wb ⊛ x) + Wc ⊛ x: three depthwise convolutions and addcmul."""

    def __init__(self, dim, k):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)
        self.conv2 = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)
        self.conv3 = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)

    def forward(self, x):
        return torch.addcmul(self.conv3(x), self.conv1(x), self.conv2(x))


# How the pointwise layers run: "conv1x1" (oneDNN) or "linear" (OpenBLAS).
POINTWISE = os.environ.get("QDSL_PEER_POINTWISE", "conv1x1")
if POINTWISE not in ("conv1x1", "linear"):
    raise SystemExit("QDSL_PEER_POINTWISE=%s: expected conv1x1 or linear" % POINTWISE)


def pointwise(linear, x):
    """nn.Linear over the channels of an NCHW tensor, as a 1x1 convolution."""
    return F.conv2d(x, linear.weight[:, :, None, None], linear.bias)


class Block(nn.Module):
    """QuadraBlock, or its ConvBlock / SkipBlock ablation."""

    def __init__(self, dim, k, kind, expand=4):
        super().__init__()
        self.kind = kind
        if kind != "skip":
            self.norm1 = LayerNorm(dim, channels_first=True)
            if kind == "quadra":
                self.QuadraConv = QuadraConv(dim, k)
            else:
                self.dwconv = nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim)
            self.gamma1 = nn.Parameter(1e-6 * torch.ones(dim))
        self.norm2 = LayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, expand * dim)
        self.pwconv2 = nn.Linear(expand * dim, dim)
        self.gamma2 = nn.Parameter(1e-6 * torch.ones(dim))

    def forward(self, x):  # NCHW
        if self.kind != "skip":
            spatial = self.QuadraConv if self.kind == "quadra" else self.dwconv
            x = x + self.gamma1[:, None, None] * spatial(self.norm1(x))
        # pwconv1/2 keep nn.Linear's (out, in) weights, so state dicts match
        # the reference; they run as 1x1 convolutions (see the module notes).
        y = self.norm2(x.permute(0, 2, 3, 1))
        if POINTWISE == "linear":
            # NHWC rows: on a channels-last x the permutes are views.
            y = self.pwconv2(F.gelu(self.pwconv1(y)))
            return x + (self.gamma2 * y).permute(0, 3, 1, 2)
        y = y.permute(0, 3, 1, 2)
        y = F.gelu(pointwise(self.pwconv1, y))
        y = pointwise(self.pwconv2, y)
        return x + self.gamma2[:, None, None] * y


class QuadraNet(nn.Module):
    def __init__(self, dims, depths, kernels, block, patch, in_chans, classes, size):
        super().__init__()
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_chans, dims[0], patch, stride=patch),
            LayerNorm(dims[0], channels_first=True))])
        for i in range(1, len(dims)):
            self.downsample_layers.append(nn.Sequential(
                LayerNorm(dims[i - 1], channels_first=True),
                nn.Conv2d(dims[i - 1], dims[i], 2, stride=2)))
        self.stages = nn.ModuleList([
            nn.Sequential(*[Block(dims[i], kernels[i], block) for _ in range(depths[i])])
            for i in range(len(dims))])
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], classes)

    def forward(self, x):  # NCHW
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean([-2, -1])))


def read_metadata(path):
    with open(path, "rb") as f:
        size = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(size)).get("__metadata__", {})


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    tensors = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        if entry["dtype"] != "F32":
            raise SystemExit("%s: tensor %s is %s, expected F32" % (path, name, entry["dtype"]))
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[8 + size + begin:8 + size + end], dtype="<f4")
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors


def build(name):
    if name not in MODELS:
        raise SystemExit("unknown model %s; known: %s" % (name, ", ".join(sorted(MODELS))))
    return QuadraNet(**MODELS[name]).eval()


def best_setting(threads):
    torch.set_num_threads(threads)
    config = torch.__config__.show()
    return config


def loaded_blas():
    """The BLAS library this process loaded (which OpenBLAS flavour the
    library path selected), from /proc/self/maps."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "blas" in line}
    except OSError:
        return None
    for path in sorted(paths, key=lambda p: not os.path.basename(p).startswith("libopenblas")):
        return os.path.realpath(path)
    return None


def best_time(run, warmup, repeat):
    """The fastest of `repeat` timed calls of run(), in seconds, after `warmup` untimed ones."""
    with torch.no_grad():
        for _ in range(warmup):
            run()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
    return min(times)


def load_model(args):
    model = build(args.model)
    state = read_safetensors(args.weights)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SystemExit("weights do not fit %s: missing %s, unexpected %s"
                         % (args.model, missing[:5], unexpected[:5]))
    return model.to(memory_format=torch.channels_last)


def compare(args):
    best_setting(args.threads)
    model = load_model(args)
    x = torch.from_numpy(np.load(args.input)).permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        logits = model(x).numpy()
    expect = np.load(args.expect)
    scale = float(np.abs(logits).max())
    diff = float(np.abs(logits - expect).max())
    print("%s: max|qdsl - torch| = %.3e, max|torch| = %.3g, normwise %.3e"
          % (args.model, diff, scale, diff / max(scale, 1e-30)))
    return 0 if diff / max(scale, 1e-30) <= args.tolerance else 1


def grad(args):
    """Loss and parameter gradients of one step, against qdsl's."""
    best_setting(args.threads)
    model = load_model(args)
    x = torch.from_numpy(np.load(args.input)).permute(0, 3, 1, 2)
    x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64))
    loss = F.cross_entropy(model(x), labels, label_smoothing=args.label_smoothing)
    loss.backward()
    expect = read_safetensors(args.expect)
    qdsl_loss = float(read_metadata(args.expect)["qdsl.loss"])
    worst, worst_name = 0.0, None
    for name, p in model.named_parameters():
        if name not in expect:
            raise SystemExit("%s: no gradient for %s" % (args.expect, name))
        g = p.grad.detach()
        e = expect[name].reshape(g.shape)
        error = float((g - e).abs().max()) / max(float(g.abs().max()), 1e-30)
        if error > worst:
            worst, worst_name = error, name
    loss_error = abs(qdsl_loss - float(loss)) / abs(float(loss))
    print("%s: loss qdsl %.7g torch %.7g (relative %.2e); %d gradients, worst normwise "
          "%.2e (%s)" % (args.model, qdsl_loss, float(loss), loss_error,
                         len(list(model.parameters())), worst, worst_name))
    return 0 if max(worst, loss_error) <= args.tolerance else 1


def bench(args):
    config = best_setting(args.threads)
    model = build(args.model).to(memory_format=torch.channels_last)
    spec = MODELS[args.model]
    results = []
    for batch in args.batch:
        x = torch.randn(batch, spec["in_chans"], spec["size"], spec["size"])
        x = x.contiguous(memory_format=torch.channels_last)
        best = best_time(lambda: model(x), args.warmup, args.repeat)
        results.append({"model": args.model, "batch": batch, "best_ms": best * 1e3,
                        "images_per_s": batch / best})
    print(json.dumps({"pytorch": torch.__version__, "threads": torch.get_num_threads(),
                      "openblas": "openblas" in config.lower() or "blas_info" in config.lower(),
                      "blas_library": loaded_blas(), "pointwise": POINTWISE,
                      "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
                      "tcmalloc": "tcmalloc" in os.environ.get("LD_PRELOAD", ""),
                      "results": results}))
    return 0


def bench_qdwconv(args):
    """Three depthwise convolutions and addcmul, channels-last, per shape."""
    best_setting(args.threads)
    n, c, h = args.shape
    conv = QuadraConv(c, args.kernel).to(memory_format=torch.channels_last).eval()
    x = torch.randn(n, c, h, h).contiguous(memory_format=torch.channels_last)
    best = best_time(lambda: conv(x), args.warmup, args.repeat)
    print(json.dumps({"shape": args.shape, "kernel": args.kernel, "best_ms": best * 1e3}))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--model", required=True)
    c.add_argument("--weights", required=True)
    c.add_argument("--input", required=True)
    c.add_argument("--expect", required=True)
    c.add_argument("--tolerance", type=float, default=1e-4)
    c.add_argument("--threads", type=int, default=2)
    g = sub.add_parser("grad")
    g.add_argument("--model", required=True)
    g.add_argument("--weights", required=True)
    g.add_argument("--input", required=True)
    g.add_argument("--labels", required=True)
    g.add_argument("--expect", required=True)
    g.add_argument("--label-smoothing", type=float, default=0.0)
    g.add_argument("--tolerance", type=float, default=1e-3)
    g.add_argument("--threads", type=int, default=2)
    b = sub.add_parser("bench")
    b.add_argument("--model", required=True)
    b.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    b.add_argument("--repeat", type=int, default=5)
    b.add_argument("--warmup", type=int, default=2)
    b.add_argument("--threads", type=int, default=2)
    q = sub.add_parser("qdwconv")
    q.add_argument("--shape", type=int, nargs=3, required=True, metavar=("N", "C", "HW"))
    q.add_argument("--kernel", type=int, default=7)
    q.add_argument("--repeat", type=int, default=20)
    q.add_argument("--warmup", type=int, default=3)
    q.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    return {"compare": compare, "grad": grad, "bench": bench,
            "qdwconv": bench_qdwconv}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
