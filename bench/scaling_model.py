#!/usr/bin/env python3
"""The data-parallel scaling model of docs/DISTRIBUTED.md: step time =
compute + the part of the gradient all-reduce the backward pass does not
hide, for a model's gradient bytes (from `qdsl stats --json`) on N GPUs.

  all-reduce of one bucket of b bytes, ring:  2(N-1) a + 2(N-1)/N * b / B
                                       tree:  2 log2(N) a + 2 b / B
  exposed = max(last bucket, all buckets - backward window)
  efficiency = compute / (compute + exposed)   (weak scaling: a fixed batch per GPU)

a: per-step latency of a link, B: its bandwidth. The compute time is an
input (--images-per-second of one GPU): no GPU has measured it yet.

  bench/scaling_model.py --qdsl build/bin/qdsl examples/quadranet36_t.qd
"""
import argparse
import json
import math
import subprocess

LINKS = {  # name: (bandwidth bytes/s, latency s per step)
    "100 Gb/s (Ethernet/InfiniBand class)": (12.5e9, 5e-6),
    "NVLink class (250 GB/s per GPU)": (250e9, 2e-6),
}


def allreduce(bytes_, n, bandwidth, latency, algorithm):
    if n == 1:
        return 0.0
    if algorithm == "ring":
        return 2 * (n - 1) * latency + 2 * (n - 1) / n * bytes_ / bandwidth
    return 2 * math.log2(n) * latency + 2 * bytes_ / bandwidth


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=128, help="per GPU (weak scaling)")
    parser.add_argument("--global-batch", type=int, default=0,
                        help="instead of --batch: a fixed batch over all GPUs (strong scaling)")
    parser.add_argument("--images-per-second", type=float, default=800.0,
                        help="one GPU's training throughput (assumed; see the doc)")
    parser.add_argument("--bucket-mb", type=float, default=4.0)
    parser.add_argument("--backward-share", type=float, default=2 / 3,
                        help="the share of a step the backward pass takes")
    args = parser.parse_args()
    stats = json.loads(subprocess.run([args.qdsl, "stats", "--json", args.model],
                                      capture_output=True, text=True, check=True).stdout)
    gradient_bytes = 4 * stats["params"]
    bucket = args.bucket_mb * 1048576
    buckets = math.ceil(gradient_bytes / bucket)
    print("%s: %.2f M parameters, %.1f MB of fp32 gradients in %d buckets of %.0f MiB; "
          "one GPU trains %.0f images/s; %s"
          % (args.model, stats["params"] / 1e6, gradient_bytes / 1e6, buckets, args.bucket_mb,
             args.images_per_second,
             "global batch %d" % args.global_batch if args.global_batch
             else "batch %d per GPU" % args.batch))
    print("| link | GPUs | batch per GPU | algorithm | all-reduce (ms) | exposed (ms) | step (ms) "
          "| efficiency |")
    print("|---|---|---|---|---|---|---|---|")
    for link, (bandwidth, latency) in LINKS.items():
        for n in (8, 64, 512):
            batch = args.global_batch / n if args.global_batch else args.batch
            compute = batch / args.images_per_second
            window = args.backward_share * compute
            for algorithm in ("ring", "tree"):
                last = min(bucket, gradient_bytes - (buckets - 1) * bucket)
                total = (buckets - 1) * allreduce(bucket, n, bandwidth, latency, algorithm) + \
                    allreduce(last, n, bandwidth, latency, algorithm)
                exposed = max(allreduce(last, n, bandwidth, latency, algorithm), total - window)
                print("| %s | %d | %g | %s | %.1f | %.1f | %.1f | %.1f%% |"
                      % (link, n, batch, algorithm, 1e3 * total, 1e3 * exposed,
                         1e3 * (compute + exposed), 100 * compute / (compute + exposed)))


if __name__ == "__main__":
    main()
