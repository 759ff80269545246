#!/usr/bin/env python3
"""The architecture-search experiments of docs/NAS.md, regenerated.

    /usr/bin/python3 bench/nas_experiments.py --qdsl build/bin/qdsl --work runs/nas \
        [--epochs 6 --retrain-epochs 6 --train-subset 20000] [experiments...]

Experiments (default: all, in this order):
  devices    one search per device of examples/fmnist_space.qd (its limit only), then one
             with every limit at once (the space's default)
  baselines  the host search against the best of 8 random architectures within the host
             limit, the largest uniform architecture within it and examples/fashion_mnist.qd
             scaled (-D C) to it; every model retrained with the same recipe and epochs
  seeds      the host search with seeds 1 and 2 (with seed 0 from `devices`: mean, spread)
  linear     the same search on the ConvBlock space and the MBConv space
             (examples/fmnist_space_conv.qd, examples/fmnist_space_mbconv.qd)
  memory     the activation memory of a search step (search.json's train_arena_mb) against
             training the largest architecture of the space (train --benchmark's arena_mb)

Each run is a `qdsl search` (or compile/build/train/predict for a baseline) whose
report lands in --work; summary.json and summary.md collect the tables. Runs that
finished are not run again (delete their directory to redo one).
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import time

import numpy as np


def run(cmd, log=None):
    print("+ " + " ".join(cmd), flush=True)
    if log:
        with open(log, "a") as f:
            subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)
        return ""
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout


class Experiments:
    def __init__(self, args):
        self.a = args
        self.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.space = os.path.join(self.root, "examples/fmnist_space.qd")
        self.host_profile = os.path.join(self.root, "profiles/host-fmnist.json")
        os.makedirs(args.work, exist_ok=True)
        self.summary_path = os.path.join(args.work, "summary.json")
        self.summary = json.load(open(self.summary_path)) if os.path.exists(self.summary_path) else {}

    def save(self):
        with open(self.summary_path + ".tmp", "w") as f:
            json.dump(self.summary, f, indent=2)
        os.replace(self.summary_path + ".tmp", self.summary_path)

    def common(self):
        a = self.a
        flags = ["--epochs", str(a.epochs), "--warmup-epochs", str(a.warmup_epochs),
                 "--retrain-epochs", str(a.retrain_epochs), "--batch", str(a.batch),
                 "--threads", "2"]
        if a.train_subset:
            flags += ["--train-subset", str(a.train_subset),
                      "--validation", str(max(1000, a.train_subset // 6))]
        return flags

    def search(self, name, space, extra):
        out = os.path.join(self.a.work, name)
        report = os.path.join(out, "report.json")
        if not os.path.exists(report):
            start = time.time()
            run([self.a.qdsl, "search", space, "-o", out, "--overwrite"] + self.common() + extra,
                log=os.path.join(self.a.work, name + ".log"))
            elapsed = time.time() - start
        else:
            elapsed = None
        with open(report) as f:
            r = json.load(f)
        entry = {"choices": r["derived"]["choices"], "test_accuracy": r["derived"]["test_accuracy"],
                 "measured_ms": r["derived"]["measured_ms"], "params": r["derived"]["params"],
                 "macs": r["derived"]["macs"], "devices": r["devices"],
                 "search_peak_memory_mb": r["search_peak_memory_mb"],
                 "seconds": elapsed if elapsed is not None else
                 self.summary.get(name, {}).get("seconds")}
        derived = open(os.path.join(out, "derived.qd")).read()
        entry["layers"] = [l.strip() for l in derived.splitlines()
                           if re.match(r"\s+(stage|down|stem|head)\b", l)]
        self.summary[name] = entry
        self.save()
        return entry

    # -- baselines: a model file (or a space at fixed choices), retrained alike --
    def train_model(self, name, source, flags):
        out = os.path.join(self.a.work, name)
        result = os.path.join(out, "result.json")
        if os.path.exists(result):
            return json.load(open(result))
        os.makedirs(out, exist_ok=True)
        log = os.path.join(out, "log.txt")
        project = os.path.join(out, "model")
        run([self.a.qdsl, "compile", source, "--train", "--target=x86-64-avx2", "-o", project]
            + flags, log=log)
        run([self.a.qdsl, "build", project], log=log)
        train = [os.path.join(project, "build", "train"), "--epochs", str(self.a.retrain_epochs),
                 "--batch", str(self.a.batch), "--threads", "2", "--out",
                 os.path.join(out, "train"), "--overwrite"]
        if self.a.train_subset:
            train += ["--train-subset", str(self.a.train_subset)]
        run(train, log=log)
        last = [json.loads(l) for l in open(os.path.join(out, "train", "metrics.jsonl"))
                if '"epoch"' in l][-1]
        x = os.path.join(out, "x.npy")
        np.save(x, np.random.default_rng(7).standard_normal((1, 28, 28, 1)).astype(np.float32))
        timing = os.path.join(out, "latency.json")
        run([os.path.join(project, "build", "predict"), "--weights",
             os.path.join(out, "train", "weights.safetensors"), "--input", x, "--output",
             os.path.join(out, "y.npy"), "--threads", "2", "--pin", "--warmup", "5",
             "--repeat", "200", "--profile-json", timing], log=log)
        runs = json.load(open(timing))["runs"]
        stats = json.loads(run([self.a.qdsl, "stats", source, "--json"] + flags))
        estimate = json.loads(run([self.a.qdsl, "estimate", source, "--device", self.host_profile,
                                   "--json"] + flags))
        r = {"test_accuracy": last["test_top1"], "measured_ms": 1e3 * float(np.median(runs)),
             "predicted_ms": estimate["total_ms"], "params": stats["params"],
             "macs": stats["macs"], "flags": flags}
        json.dump(r, open(result, "w"), indent=2)
        return r

    def host_limit(self):
        for line in open(self.space):
            m = re.search(r'latency\("host-fmnist"\)\s*<=\s*([0-9.]+)\s*ms', line)
            if m:
                return float(m.group(1))
        raise RuntimeError("no host-fmnist limit in " + self.space)

    def predicted(self, choices):
        e = json.loads(run([self.a.qdsl, "estimate", self.space, "--choices=" + choices,
                            "--device", self.host_profile, "--json"]))
        return e["total_ms"]

    def devices(self):
        for device in ("host-fmnist", "cortex-a76", "myriad-vpu"):
            self.search("device-" + device, self.space, ["--only", device])
        self.search("device-all", self.space, [])

    def baselines(self):
        limit = self.host_limit()
        searched = self.search("device-host-fmnist", self.space, ["--only", "host-fmnist"])
        space_stats = json.loads(run([self.a.qdsl, "estimate", self.space, "--device",
                                      self.host_profile, "--json"]))
        counts = [len(l["candidates"]) for l in space_stats["layers"]]
        rng = random.Random(0)
        found = []
        while len(found) < 8:
            picks = ",".join(str(rng.randrange(n)) for n in counts)
            if picks not in found and self.predicted(picks) <= limit:
                found.append(picks)
        results = {}
        for i, picks in enumerate(found):
            results["random-%d" % i] = self.train_model("baseline-random-%d" % i, self.space,
                                                        ["--choices=" + picks])
        # The largest uniform architecture: one block for every layer (identity never).
        uniform = None
        for c in range(min(counts)):
            picks = ",".join([str(c)] * len(counts))
            p = self.predicted(picks)
            if p <= limit:
                macs = json.loads(run([self.a.qdsl, "stats", self.space, "--choices=" + picks,
                                       "--json"]))["macs"]
                if uniform is None or macs > uniform[1]:
                    uniform = (picks, macs)
        if uniform:
            results["uniform"] = self.train_model("baseline-uniform", self.space,
                                                  ["--choices=" + uniform[0]])
        # examples/fashion_mnist.qd widened or narrowed to the limit.
        hand = os.path.join(self.root, "examples/fashion_mnist.qd")
        best = None
        for width in range(8, 129, 4):
            e = json.loads(run([self.a.qdsl, "estimate", hand, "-D", "C=%d" % width, "--device",
                                self.host_profile, "--json"]))
            if e["total_ms"] <= limit:
                best = width
        if best:
            results["hand-scaled"] = self.train_model("baseline-hand-C%d" % best, hand,
                                                      ["-D", "C=%d" % best])
        self.summary["baselines"] = {"limit_ms": limit, "searched": searched, "models": results}
        self.save()

    def seeds(self):
        for s in (1, 2):
            self.search("host-seed-%d" % s, self.space, ["--only", "host-fmnist", "--seed", str(s)])

    def memory(self):
        out = os.path.join(self.a.work, "memory-largest")
        project = os.path.join(out, "model")
        os.makedirs(out, exist_ok=True)
        counts = [len(l["candidates"]) for l in json.loads(run(
            [self.a.qdsl, "estimate", self.space, "--device", self.host_profile, "--json"]))["layers"]]
        # The largest architecture: the most MACs per layer (k = 7, expand = 4).
        largest = ",".join(["5"] * len(counts))
        log = os.path.join(out, "log.txt")
        if not os.path.exists(os.path.join(project, "build", "train")):
            run([self.a.qdsl, "compile", self.space, "--choices=" + largest, "--train",
                 "--target=x86-64-avx2", "-o", project], log=log)
            run([self.a.qdsl, "build", project], log=log)
        bench = json.loads(run([os.path.join(project, "build", "train"), "--benchmark", "--batch",
                                str(self.a.batch), "--threads", "2"]).strip().splitlines()[-1])
        search = json.load(open(os.path.join(self.a.work, "device-host-fmnist", "search",
                                              "search.json")))
        self.summary["memory"] = {"largest": largest, "largest_train_arena_mb": bench["arena_mb"],
                                  "largest_step_s": bench["step_s"],
                                  "search_train_arena_mb": search["train_arena_mb"],
                                  "search_peak_memory_mb": search["peak_memory_mb"]}
        self.save()

    def linear(self):
        for name in ("conv", "mbconv"):
            space = os.path.join(self.root, "examples/fmnist_space_%s.qd" % name)
            self.search("linear-" + name, space, ["--only", "host-fmnist"])


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qdsl", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--retrain-epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--train-subset", type=int, default=20000)
    p.add_argument("experiments", nargs="*",
                   default=["devices", "memory", "baselines", "seeds", "linear"])
    args = p.parse_args()
    e = Experiments(args)
    for name in args.experiments:
        getattr(e, name)()
    print(json.dumps(e.summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
