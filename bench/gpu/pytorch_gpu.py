"""PyTorch on the GPU, in its best setting, as the peer of qdsl's cuda target
(bench/gpu/run.sh runs it next to qdsl's programs in the same run).

    pytorch_gpu.py suite '[{"run": "infer", "model": "quadranet36_t", "precision": "bf16"},
                           {"run": "infer", "timm": "convnext_tiny", "precision": "tf32"},
                           {"run": "infer", "model": "quadranet36_t", "mode": "default"},
                           {"run": "train", "model": "quadranet36_t", "precision": "bf16"},
                           {"run": "qdwconv", "shape": [128, 256, 14]},
                           {"run": "bandwidth"}]'

Runs each configuration in one process (torch is imported once) and prints
one JSON line per configuration as soon as it is measured, so that a run cut
short keeps what it measured; a configuration that fails prints
{"error": ...} and the suite goes on.

Best setting: channels_last, cudnn.benchmark, the same precision as qdsl's
(fp32: TF32 off everywhere; tf32: TF32 matmuls and convolutions; bf16:
autocast to bfloat16, fp32 weights), eager or torch.compile (mode "default"
or "max-autotune"). Times are device times between CUDA events around a loop
of calls, the best of several loops, so that Python's dispatch of small
kernels is hidden as it is in a real training loop.
"""
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


def device_ms(run, warmup=3, loops=5, calls=10):
    """The best of `loops` loops of `calls` calls, per call, in device ms."""
    for _ in range(warmup):
        run()
    torch.cuda.synchronize()
    best = float("inf")
    for _ in range(loops):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(calls):
            run()
        end.record()
        end.synchronize()
        best = min(best, start.elapsed_time(end) / calls)
    return best


def build(config):
    if config.get("timm"):
        import timm
        return timm.create_model(config["timm"], pretrained=False), 3, 224
    spec = MODELS[config.get("model", "quadranet36_t")]
    return QuadraNet(**spec), spec["in_chans"], spec["size"]


def infer(config):
    precision, mode, batch = config.get("precision", "fp32"), config.get("mode", "eager"), \
        config.get("batch", 128)
    set_precision(precision)
    torch._dynamo.reset()
    model, chans, size = build(config)
    model = model.cuda().eval().to(memory_format=torch.channels_last)
    start = time.perf_counter()
    if mode != "eager":
        model = torch.compile(model, mode=mode)
    x = torch.randn(batch, chans, size, size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.no_grad(), autocast(precision):
            model(x)
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    ms = device_ms(step, calls=5)
    return {"model": config.get("timm") or config.get("model", "quadranet36_t"), "batch": batch,
            "precision": precision, "mode": mode, "best_ms": ms,
            "images_per_s": batch / ms * 1e3, "first_call_s": first}


def train(config):
    precision, batch = config.get("precision", "bf16"), config.get("batch", 128)
    set_precision(precision)
    model, chans, size = build(config)
    model = model.cuda().train().to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(batch, chans, size, size, device="cuda")
    x = x.contiguous(memory_format=torch.channels_last)
    classes = MODELS.get(config.get("model", ""), {}).get("classes", 1000)
    labels = torch.randint(0, classes, (batch,), device="cuda")

    def step():
        with autocast(precision):
            loss = F.cross_entropy(model(x), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    ms = device_ms(step, warmup=1, loops=3, calls=2)
    return {"model": config.get("model", "quadranet36_t"), "batch": batch,
            "precision": precision, "best_ms": ms,
            "peak_gpu_memory_mib": torch.cuda.max_memory_allocated() / 2**20}


def qdwconv(config):
    set_precision("fp32")
    n, c, h = config["shape"]
    k = config.get("kernel", 7)
    conv = QuadraConv(c, k).cuda().to(memory_format=torch.channels_last)
    x = torch.randn(n, c, h, h, device="cuda").contiguous(memory_format=torch.channels_last)

    def forward():
        with torch.no_grad():
            conv(x)
    forward_ms = device_ms(forward)
    xg = x.clone().requires_grad_(True)

    def both():
        conv(xg).sum().backward()
    return {"shape": [n, c, h], "kernel": k, "forward_ms": forward_ms,
            "forward_backward_ms": device_ms(both)}


def bandwidth(config):
    """Device memory bandwidth: a 1 GiB copy, read and written."""
    a = torch.empty(2**28, device="cuda")
    b = torch.empty_like(a)
    ms = device_ms(lambda: b.copy_(a), loops=3, calls=5)
    return {"bytes": 2 * a.numel() * 4, "best_ms": ms, "gb_per_s": 2 * a.numel() * 4 / ms / 1e6,
            "device": torch.cuda.get_device_name()}


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "suite":
        sys.exit(__doc__)
    runs = {"infer": infer, "train": train, "qdwconv": qdwconv, "bandwidth": bandwidth}
    for config in json.loads(sys.argv[2]):
        try:
            result = runs[config["run"]](config)
        except Exception as error:  # one configuration's failure is its own
            result = {"error": "%s: %s" % (type(error).__name__, str(error)[:500])}
        print(json.dumps(dict(config=config, **result)), flush=True)
        torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
