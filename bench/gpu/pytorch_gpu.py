"""PyTorch on the GPU, in its best setting, as the peer of qdsl's cuda target
(bench/gpu/run.sh runs it next to qdsl's programs in the same run).

    pytorch_gpu.py infer --model quadranet36_t --batch 128 --precision bf16 --mode eager
    pytorch_gpu.py infer --timm convnext_tiny --batch 128 --precision tf32 --mode compile
    pytorch_gpu.py train --model quadranet36_t --batch 128 --precision bf16
    pytorch_gpu.py qdwconv --shape 128 256 14 --kernel 7
    pytorch_gpu.py bandwidth

Best setting: channels_last, cudnn.benchmark, the same precision as qdsl's
(fp32: TF32 off everywhere; tf32: TF32 matmuls and convolutions; bf16:
autocast to bfloat16, fp32 weights), eager or torch.compile (mode "default"
or "max-autotune"). Times are the best of --repeat after --warmup, each
synchronised; every command prints one JSON line.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from pytorch_quadranet import MODELS, QuadraConv, QuadraNet  # noqa: E402


def set_precision(precision):
    tf32 = precision == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True


def autocast(precision):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")


def best_time(run, warmup, repeat):
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def build(args):
    if args.timm:
        import timm
        return timm.create_model(args.timm, pretrained=False), 3, 224
    spec = MODELS[args.model]
    return QuadraNet(**spec), spec["in_chans"], spec["size"]


def infer(args):
    set_precision(args.precision)
    model, chans, size = build(args)
    model = model.cuda().eval().to(memory_format=torch.channels_last)
    start = time.perf_counter()
    if args.mode != "eager":
        model = torch.compile(model, mode=args.mode)
    x = torch.randn(args.batch, chans, size, size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.no_grad(), autocast(args.precision):
            model(x)
    step()
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - start
    best = best_time(step, args.warmup, args.repeat)
    print(json.dumps({"model": args.timm or args.model, "batch": args.batch,
                      "precision": args.precision, "mode": args.mode, "best_ms": best * 1e3,
                      "images_per_s": args.batch / best, "first_call_s": compile_s}))


def train(args):
    set_precision(args.precision)
    model, chans, size = build(args)
    model = model.cuda().train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(args.batch, chans, size, size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, MODELS.get(args.model, {}).get("classes", 1000), (args.batch,),
                           device="cuda")

    def step():
        with autocast(args.precision):
            loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    best = best_time(step, args.warmup, args.repeat)
    print(json.dumps({"model": args.model, "batch": args.batch, "precision": args.precision,
                      "best_ms": best * 1e3,
                      "peak_memory_mib": torch.cuda.max_memory_allocated() / 2**20}))


def qdwconv(args):
    set_precision("fp32")
    n, c, h = args.shape
    conv = QuadraConv(c, args.kernel).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(n, c, h, h, device="cuda").contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    forward = best_time(lambda: conv(x), args.warmup, args.repeat)

    def both():
        conv(x).sum().backward()
    backward = best_time(both, args.warmup, args.repeat)
    print(json.dumps({"shape": args.shape, "kernel": args.kernel, "forward_ms": forward * 1e3,
                      "forward_backward_ms": backward * 1e3}))


def bandwidth(args):
    """Device memory bandwidth: a 1 GiB copy, read and written."""
    a = torch.empty(2**28, device="cuda")
    b = torch.empty_like(a)
    best = best_time(lambda: b.copy_(a), 3, 10)
    print(json.dumps({"bytes": 2 * a.numel() * 4, "best_ms": best * 1e3,
                      "gb_per_s": 2 * a.numel() * 4 / best / 1e9,
                      "device": torch.cuda.get_device_name()}))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("infer", "train"):
        p = sub.add_parser(name)
        p.add_argument("--model", default="quadranet36_t")
        p.add_argument("--timm", default=None)
        p.add_argument("--batch", type=int, default=128)
        p.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32")
        p.add_argument("--mode", choices=["eager", "default", "max-autotune"], default="eager")
        p.add_argument("--repeat", type=int, default=10)
        p.add_argument("--warmup", type=int, default=3)
    q = sub.add_parser("qdwconv")
    q.add_argument("--shape", type=int, nargs=3, required=True, metavar=("N", "C", "HW"))
    q.add_argument("--kernel", type=int, default=7)
    q.add_argument("--repeat", type=int, default=20)
    q.add_argument("--warmup", type=int, default=3)
    sub.add_parser("bandwidth")
    args = parser.parse_args()
    {"infer": infer, "train": train, "qdwconv": qdwconv, "bandwidth": bandwidth}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
