#!/usr/bin/env python3
"""Data-parallel training on this machine: 1 process x 2 threads against
2 MPI processes x 1 thread, at the same global batch, and what the gradient
all-reduce costs per step (docs/DISTRIBUTED.md).

  Fashion-MNIST (examples/fashion_mnist.qd): a real training epoch on a
    subset of the data, images per second as train reports them;
  QuadraNet36-T (224x224): train --benchmark steps on random data, batch 16
    per process, with the all-reduce's time in flight and the part of it
    waited for after the backward pass (bucketed, overlapping the backward
    pass, against one all-reduce after it: --bucket-mb 0).

Both configurations are measured in the same run, alternating, best of
--rounds; the machine is shared, so compare the ratios.

  bench/distributed.py --qdsl build/bin/qdsl --work out/dist-bench
"""
import argparse
import json
import os
import re

from benchlib import run

MPIRUN = ["mpirun", "--oversubscribe", "--allow-run-as-root", "--bind-to", "core"]


def build(qdsl, root, work, example):
    project = os.path.join(work, example)
    if not os.path.exists(os.path.join(project, "build", "train")):
        run([qdsl, "compile", os.path.join(root, "examples", example + ".qd"), "--train",
             "-o", project])
        run([qdsl, "build", project])
    return os.path.join(project, "build", "train")


def epoch_rate(cmd, out):
    """Images per second of a one-epoch run (train's epoch line)."""
    text = run(cmd + ["--out", out, "--overwrite"]).stdout
    m = re.search(r"epoch 1: .*?([0-9.]+) images/s", text)
    if not m:
        raise SystemExit("no epoch line in:\n" + text[-2000:])
    return float(m.group(1))


def benchmark(cmd):
    lines = [l for l in run(cmd).stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    parser.add_argument("--work", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="benchmark steps per round")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    results = {}

    # Fashion-MNIST: a real epoch, global batch 64.
    fm = build(args.qdsl, args.root, args.work, "fashion_mnist")
    data = ["--train-subset", "8192", "--test-subset", "512", "--epochs", "1", "--seed", "1"]
    one, two = [], []
    for _ in range(args.rounds):
        one.append(epoch_rate([fm] + data + ["--batch", "64", "--threads", "2"],
                              os.path.join(args.work, "fm1")))
        two.append(epoch_rate(MPIRUN + ["-np", "2", fm] + data + ["--batch", "32", "--threads",
                                                                "1"],
                              os.path.join(args.work, "fm2")))
    fm_bench = benchmark(MPIRUN + ["-np", "2", fm, "--benchmark", "--batch", "32", "--threads",
                                   "1", "--steps", "20"])
    results["fashion_mnist"] = {"one_process_2_threads_images_per_s": max(one),
                                "two_processes_1_thread_images_per_s": max(two),
                                "global_batch": 64, "benchmark_2x32": fm_bench}

    # QuadraNet36-T at 224x224: batch 16 per process.
    q36 = build(args.qdsl, args.root, args.work, "quadranet36_t")
    step = ["--benchmark", "--steps", str(args.steps), "--seed", "1"]
    rows = {"1x2 threads, batch 32": [], "1x2 threads, batch 16": [],
            "2x1 thread, batch 16 each": [], "2x1 thread, batch 16 each, no overlap": []}
    for _ in range(args.rounds):
        rows["1x2 threads, batch 32"].append(benchmark([q36] + step + ["--batch", "32",
                                                                      "--threads", "2"]))
        rows["1x2 threads, batch 16"].append(benchmark([q36] + step + ["--batch", "16",
                                                                      "--threads", "2"]))
        rows["2x1 thread, batch 16 each"].append(
            benchmark(MPIRUN + ["-np", "2", q36] + step + ["--batch", "16", "--threads", "1"]))
        rows["2x1 thread, batch 16 each, no overlap"].append(
            benchmark(MPIRUN + ["-np", "2", q36] + step + ["--batch", "16", "--threads", "1",
                                                          "--bucket-mb", "0"]))
    table = ["| QuadraNet36-T 224² | global batch | step (s) | images/s | all-reduce alone "
             "(ms) | waited after backward (ms) |", "|---|---|---|---|---|---|"]
    q_results = {}
    for name, runs in rows.items():
        best = min(runs, key=lambda r: r["step_s"])
        global_batch = best.get("global_batch", best["batch"])
        q_results[name] = best
        table.append("| %s | %d | %.3f | %.2f | %s | %s |" % (
            name, global_batch, best["step_s"], global_batch / best["step_s"],
            "%.1f" % (1e3 * best["allreduce_alone_s"]) if "allreduce_alone_s" in best
            else "-",
            "%.1f (least %.1f)" % (1e3 * best["allreduce_exposed_s"],
                                   1e3 * best["allreduce_exposed_least_s"])
            if "allreduce_exposed_s" in best else "-"))
    results["quadranet36_t"] = q_results
    mb = q_results["2x1 thread, batch 16 each"]["allreduce_mb"]
    print("Fashion-MNIST, one epoch of 8192 examples, global batch 64: 1 process x 2 threads "
          "%.0f images/s, 2 processes x 1 thread %.0f images/s (%.2fx); all-reduce of %.2f MB: "
          "%.2f ms per step" % (max(one), max(two), max(two) / max(one),
                                fm_bench["allreduce_mb"], 1e3 * fm_bench["allreduce_alone_s"]))
    print("QuadraNet36-T gradients: %.1f MB per step" % mb)
    print("\n".join(table))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
