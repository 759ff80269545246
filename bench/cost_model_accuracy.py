#!/usr/bin/env python3
"""End-to-end accuracy of the latency model (docs/COST_MODEL.md).

Samples architectures of a search space at random (a seed of its own, and
never one the profile timed), compiles and builds each, times it end to end
and compares with `qdsl estimate` under a device profile of this machine:

  bench/cost_model_accuracy.py --qdsl build/bin/qdsl --profile host.json \
      [--space examples/search_space.qd] [--count 30] [--batches 1,8] \
      [--rounds 3] [--repeat 5] [--markdown M.md] [--json R.json]

Timing: `predict --threads 2 --pin --warmup 1 --repeat R` per architecture,
in --rounds rounds that visit every architecture in turn (so that a slow
spell of this shared machine spreads over all of them); the figure is the
median of all rounds' runs (rounds x repeat, at least 5). Estimates are
made twice: as qdsl estimate makes them (a configuration the profile
measured takes its measured median) and with --fitted-only (every kernel
from its family's fitted predictor).
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import run  # noqa: E402


def space_choices(qdsl, space):
    stats = json.loads(run([qdsl, "stats", space, "--json"]).stdout)
    return [len(c["candidates"]) for c in stats["search_space"]["choices"]]


def profiled_architectures(profile):
    with open(profile) as f:
        return {p["model"] for p in json.load(f).get("passes", [])}


def estimate(qdsl, space, picks, profile, batch, fitted_only):
    cmd = [qdsl, "estimate", space, "--choices=" + picks, "--device", profile,
           "--batch", str(batch), "--json"]
    if fitted_only:
        cmd.append("--fitted-only")
    return json.loads(run(cmd).stdout)["total_ms"]


def accuracy(errors):
    if not errors:
        return float("nan"), float("nan")
    rmspe = (sum(e * e for e in errors) / len(errors)) ** 0.5
    within = sum(abs(e) <= 0.10 for e in errors) / len(errors)
    return rmspe, within


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--profile", required=True)
    parser.add_argument("--space", default="examples/search_space.qd")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default="build/bench/cost_model")
    parser.add_argument("--markdown")
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.rounds * args.repeat < 5:
        raise SystemExit("rounds x repeat must be at least 5 (the issue's median of >= 5 runs)")
    batches = [int(b) for b in args.batches.split(",")]
    qdsl = os.path.abspath(args.qdsl)
    counts = space_choices(qdsl, args.space)
    seen = profiled_architectures(args.profile)
    rng = random.Random(args.seed)
    archs = []
    while len(archs) < args.count:
        picks = ",".join(str(rng.randrange(n)) for n in counts)
        if picks not in seen and picks not in archs:
            archs.append(picks)

    os.makedirs(args.work, exist_ok=True)
    started = time.time()
    programs = []
    for i, picks in enumerate(archs):
        directory = os.path.join(args.work, "arch-%d" % i)
        run([qdsl, "compile", args.space, "--choices=" + picks, "--target", "x86-64-avx2",
             "-o", directory])
        run([qdsl, "build", directory])
        programs.append(os.path.join(directory, "build", "predict"))
        print("built %2d/%d %s (%.0f s)" % (i + 1, len(archs), picks, time.time() - started),
              flush=True)

    shape = None
    inputs = {}
    with open(os.path.join(args.work, "arch-0", "model.mlir")) as f:
        text = f.read()
    # The input of every architecture: f32 224x224x3 for the example space.
    import re
    match = re.search(r"tensor<\?x([0-9x]+)xf32>", text)
    shape = [int(d) for d in match.group(1).split("x")]
    for b in batches:
        path = os.path.join(args.work, "input-%d.npy" % b)
        np.save(path, np.random.default_rng(b).standard_normal([b] + shape, dtype=np.float32))
        inputs[b] = path

    runs = {(i, b): [] for i in range(len(archs)) for b in batches}
    result = os.path.join(args.work, "timing.json")
    for r in range(args.rounds):
        for i, program in enumerate(programs):
            for b in batches:
                run([program, "--input", inputs[b], "--output",
                     os.path.join(args.work, "out.npy"), "--threads", str(args.threads), "--pin",
                     "--warmup", "1", "--repeat", str(args.repeat), "--profile-json", result])
                with open(result) as f:
                    runs[(i, b)] += json.load(f)["runs"]
        print("timing round %d/%d done (%.0f s)" % (r + 1, args.rounds, time.time() - started),
              flush=True)

    rows, results = [], {"profile": args.profile, "space": args.space, "seed": args.seed,
                         "rounds": args.rounds, "repeat": args.repeat, "architectures": []}
    errors = {(b, mode): [] for b in batches for mode in ("estimate", "fitted")}
    for i, picks in enumerate(archs):
        entry = {"choices": picks, "batches": {}}
        for b in batches:
            measured = statistics.median(runs[(i, b)]) * 1e3
            predicted = estimate(qdsl, args.space, picks, args.profile, b, False)
            fitted = estimate(qdsl, args.space, picks, args.profile, b, True)
            e1 = (predicted - measured) / measured
            e2 = (fitted - measured) / measured
            errors[(b, "estimate")].append(e1)
            errors[(b, "fitted")].append(e2)
            entry["batches"][str(b)] = {"measured_ms": measured, "estimate_ms": predicted,
                                        "fitted_ms": fitted, "runs": len(runs[(i, b)])}
            rows.append("| %s | %d | %.3f | %.3f | %+.1f%% | %.3f | %+.1f%% |" %
                        (picks, b, measured, predicted, 100 * e1, fitted, 100 * e2))
        results["architectures"].append(entry)

    lines = ["| architecture (choices) | batch | measured ms | estimate ms | error | "
             "fitted-only ms | error |", "|---|---|---|---|---|---|---|"] + rows
    lines.append("")
    lines.append("| batch | predictor | RMSPE | within ±10% |")
    lines.append("|---|---|---|---|")
    summary = {}
    for b in batches:
        for mode, label in (("estimate", "qdsl estimate"), ("fitted", "fitted predictors only")):
            rmspe, within = accuracy(errors[(b, mode)])
            summary["%s@%d" % (mode, b)] = {"rmspe": rmspe, "within_10pct": within}
            lines.append("| %d | %s | %.1f%% | %.0f%% (%d of %d) |" %
                         (b, label, 100 * rmspe, 100 * within,
                          round(within * len(archs)), len(archs)))
    results["summary"] = summary
    results["seconds"] = time.time() - started
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
