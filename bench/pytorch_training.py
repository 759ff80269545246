"""PyTorch's training step on the models of bench/pytorch_quadranet.py: the
peer of qdsl's training memory and speed, measured on this machine.

    pytorch_training.py step --model quadranet36_t --batch 16 [--steps 3]
        One training step (forward, cross-entropy, backward, AdamW) in
        PyTorch's best CPU setting: the best step time, and the peak resident
        memory above what the process held before the first step (which
        allocates the gradients and AdamW's state).

    pytorch_training.py stack --block quadra --batch 8 32
        The paper's Table II setting (24 blocks of 64 channels on a 56×56
        map) at each batch size, and the memory per image: the slope of peak
        memory over the batch sizes.

    pytorch_training.py qdwconv --shape 8 256 14
        Forward and backward of one quadratic depthwise convolution (k = 7,
        three depthwise convolutions and addcmul) under a pooled 10-way
        linear head, with AdamW: the peer of a qdsl training step of
        `model { input f32[H, W, C]  layer qdwconv(k = 7)  head … }`.

Each measurement runs in a process of its own, so that one peak does not
hide another. Run it in PyTorch's best setting, as bench/training_benchmarks.py
does (bench/benchlib.py's pytorch_env; it measures both wait policies):

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
    LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    OMP_WAIT_POLICY=ACTIVE python3 bench/pytorch_training.py stack --block quadra
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_quadranet import MODELS, Block, QuadraConv, best_setting, build  # noqa: E402


def resident_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Stack(nn.Module):
    """24 blocks at 64 channels and a linear head over the pooled features."""

    def __init__(self, block, depth=24, dim=64, classes=10):
        super().__init__()
        self.blocks = nn.Sequential(*[Block(dim, 7, block) for _ in range(depth)])
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.blocks(x).mean((2, 3)))


class QuadraConvHead(nn.Module):
    """One quadratic depthwise convolution, then a pooled linear head."""

    def __init__(self, dim, k=7, classes=10):
        super().__init__()
        self.conv = QuadraConv(dim, k)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


def measure(model, shape, classes, steps):
    """Best step time (s) and peak memory over the process before (MB)."""
    model = model.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3, weight_decay=0.05)
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, classes, (shape[0],))
    before = resident_mb()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels, label_smoothing=0.1)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times), peak_mb() - before


def one(args):
    best_setting(args.threads)
    if args.qdwconv:
        n, c, hw = args.qdwconv
        model, classes, shape = QuadraConvHead(c), 10, (n, c, hw, hw)
        args.model = "qdwconv-%d-%d-%d" % (n, c, hw)
    elif args.block:
        model, classes = Stack(args.block), 10
        shape = (args.batch, 64, 56, 56)
    else:
        spec = MODELS[args.model]
        model, classes = build(args.model), spec["classes"]
        shape = (args.batch, spec["in_chans"], spec["size"], spec["size"])
    seconds, extra = measure(model, shape, classes, args.steps)
    print(json.dumps({"model": args.model or args.block + "-stack", "batch": args.batch,
                      "step_s": seconds, "peak_over_start_mb": extra}))
    return 0


def spawn(extra):
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "one"] + extra,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def step(args):
    r = spawn(["--model", args.model, "--batch", str(args.batch), "--steps", str(args.steps),
               "--threads", str(args.threads)])
    print(json.dumps(r))
    return 0


def qdwconv(args):
    n, c, hw = args.shape
    r = spawn(["--qdwconv", str(n), str(c), str(hw), "--batch", str(n), "--steps",
               str(args.steps), "--threads", str(args.threads)])
    print(json.dumps(r))
    return 0


def stack(args):
    runs = [spawn(["--block", args.block, "--batch", str(b), "--steps", str(args.steps),
                   "--threads", str(args.threads)]) for b in args.batch]
    first, last = runs[0], runs[-1]
    slope = (last["peak_over_start_mb"] - first["peak_over_start_mb"]) / max(
        1, last["batch"] - first["batch"])
    print(json.dumps({"block": args.block, "runs": runs, "mb_per_image": slope}))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("step")
    s.add_argument("--model", required=True, choices=sorted(MODELS))
    s.add_argument("--batch", type=int, default=16)
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("stack")
    t.add_argument("--block", required=True, choices=["quadra", "conv", "skip"])
    t.add_argument("--batch", type=int, nargs="+", default=[8, 32])
    t.add_argument("--steps", type=int, default=2)
    t.add_argument("--threads", type=int, default=2)
    q = sub.add_parser("qdwconv")
    q.add_argument("--shape", type=int, nargs=3, required=True, metavar=("N", "C", "HW"))
    q.add_argument("--steps", type=int, default=5)
    q.add_argument("--threads", type=int, default=2)
    o = sub.add_parser("one")
    o.add_argument("--qdwconv", type=int, nargs=3)
    o.add_argument("--model")
    o.add_argument("--block")
    o.add_argument("--batch", type=int, required=True)
    o.add_argument("--steps", type=int, default=2)
    o.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    return {"step": step, "stack": stack, "qdwconv": qdwconv, "one": one}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
