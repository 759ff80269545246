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
  all        the search with every limit at once (also the last run of `devices`)
  seeds      the host search with seeds 1 and 2 (with seed 0 from `devices`: mean, spread)
  fill       the host search and the all-limits one derived again with --derive=fill
             (`qdsl search --from-search`: no new search), retrained alike
             (--fill-all: every finished search)
  linear     the host search on the QuadraBlock space, the ConvBlock space and the
             MBConv space (examples/fmnist_space_conv.qd, examples/fmnist_space_mbconv.qd),
             each with the host profile calibrated on its own space
  overhead   a supernet weight step on one path against that architecture trained alone
  plot       docs/nas/accuracy-latency.svg: every model's accuracy against its latency
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
        os.makedirs(args.work, exist_ok=True)
        # The shipped profile carried over to this machine as it is today
        # (machines of this class differ, and drift, by up to 30%), once per
        # space: calibration times the space's own kernels, so the ConvBlock
        # and MBConv spaces' dwconv families are corrected on their shapes.
        self.profiles = {}
        self.host_profile = self.profile_for(self.space)
        self.summary_path = os.path.join(args.work, "summary.json")
        self.summary = json.load(open(self.summary_path)) if os.path.exists(self.summary_path) else {}

    def profile_for(self, space):
        if space not in self.profiles:
            stem = os.path.splitext(os.path.basename(space))[0]
            # Named after the device its limits are on: qdsl search takes a
            # --device profile for the limits on the device it is named after.
            path = os.path.join(self.a.work, "host-fmnist.json") if space == self.space \
                else os.path.join(self.a.work, "profiles-" + stem, "host-fmnist.json")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if not os.path.exists(path):
                run([self.a.qdsl, "profile", space, "--calibrate",
                     os.path.join(self.root, "profiles/host-fmnist.json"), "-o", path],
                    log=os.path.join(self.a.work, "calibrate.log"))
            self.profiles[space] = path
        return self.profiles[space]

    def save(self):
        with open(self.summary_path + ".tmp", "w") as f:
            json.dump(self.summary, f, indent=2)
        os.replace(self.summary_path + ".tmp", self.summary_path)

    def common(self, space):
        a = self.a
        flags = ["--epochs", str(a.epochs), "--warmup-epochs", str(a.warmup_epochs),
                 "--retrain-epochs", str(a.retrain_epochs), "--batch", str(a.batch),
                 "--threads", "2", "--device", self.profile_for(space), "--arch-lr", str(a.arch_lr),
                 "--arch-every", str(a.arch_every)]
        if a.train_subset:
            flags += ["--train-subset", str(a.train_subset),
                      "--validation", str(max(1000, a.train_subset // 6))]
        return flags

    def search(self, name, space, extra):
        out = os.path.join(self.a.work, name)
        report = os.path.join(out, "report.json")
        if not os.path.exists(report):
            start = time.time()
            flags = self.common(space)
            if "--from-search" in extra:
                # Nothing is searched: qdsl search refuses the search's own flags.
                search_only = {"--epochs", "--warmup-epochs", "--arch-lr", "--arch-every",
                               "--validation"}
                flags = [f for i, f in enumerate(flags)
                         if f not in search_only and (i == 0 or flags[i - 1] not in search_only)]
            run([self.a.qdsl, "search", space, "-o", out, "--overwrite"] + flags + extra,
                log=os.path.join(self.a.work, name + ".log"))
            elapsed = time.time() - start
        else:
            elapsed = None
        with open(report) as f:
            r = json.load(f)
        entry = {"choices": r["derived"]["choices"], "test_accuracy": r["derived"]["test_accuracy"],
                 "held": r["derived"].get("layers"),
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
             "macs": stats["macs"], "flags": flags, "directory": name}
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
        # Rejection by predicted latency: the space's additive model (what
        # qdsl search derives with), one estimate for every candidate.
        def additive(picks):
            return space_stats["fixed_ms"] + sum(
                l["candidates"][p]["ms"] for l, p in zip(space_stats["layers"], picks))
        rng = random.Random(0)
        found = []
        while len(found) < self.a.random:
            picks = [rng.randrange(n) for n in counts]
            text = ",".join(map(str, picks))
            if text not in found and additive(picks) <= limit:
                found.append(text)
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

    def remeasure(self):
        """Every derived and baseline model timed again, now, both ways: the
        profile's protocol (8 rounds of 5 runs, fastest round's median) and
        the median of 200 consecutive runs; with its prediction."""
        x = os.path.join(self.a.work, "x-remeasure.npy")
        np.save(x, np.random.default_rng(7).standard_normal((1, 28, 28, 1)).astype(np.float32))
        out = {}
        for name in sorted(os.listdir(self.a.work)):
            d = os.path.join(self.a.work, name)
            predict = os.path.join(d, "model", "build", "predict")
            weights = [os.path.join(d, "weights.safetensors"),
                       os.path.join(d, "train", "weights.safetensors")]
            weights = [w for w in weights if os.path.exists(w)]
            if not os.path.exists(predict) or not weights:
                continue
            def timed(repeat, warmup):
                t = os.path.join(self.a.work, "t.json")
                run([predict, "--weights", weights[0], "--input", x, "--output",
                     os.path.join(self.a.work, "y.npy"), "--threads", "2", "--pin", "--warmup",
                     str(warmup), "--repeat", str(repeat), "--profile-json", t])
                return float(np.median(json.load(open(t))["runs"])) * 1e3
            rounds = min(timed(5, 1) for _ in range(8))
            long = timed(200, 5)
            source = os.path.join(d, "derived.qd")
            flags = []
            if not os.path.exists(source):
                r = json.load(open(os.path.join(d, "result.json")))
                flags = r["flags"]
                source = self.space if any(f.startswith("--choices") for f in flags) else \
                    os.path.join(self.root, "examples/fashion_mnist.qd")
            space = self.space
            if name.startswith("linear-"):
                stem = name[len("linear-"):].replace("-fill", "")
                space = os.path.join(self.root, "examples/fmnist_space_%s.qd" % stem)
            e = json.loads(run([self.a.qdsl, "estimate", source, "--device",
                                self.profile_for(space), "--json"] + flags))
            out[name] = {"rounds_ms": rounds, "median200_ms": long, "predicted_ms": e["total_ms"]}
        self.summary["remeasure"] = out
        self.save()
        for name, r in out.items():
            print("%-28s predicted %.3f  profile protocol %.3f (%+.1f%%)  median of 200 %.3f (%+.1f%%)"
                  % (name, r["predicted_ms"], r["rounds_ms"],
                     100 * (r["rounds_ms"] / r["predicted_ms"] - 1), r["median200_ms"],
                     100 * (r["median200_ms"] / r["predicted_ms"] - 1)))

    def tables(self):
        """The tables of docs/NAS.md, from summary.json (runs that finished)."""
        s = self.summary
        lines = ["| search | derived choices | params | MACs | predicted ms (limit) per device | "
                 "measured ms (this machine) | test top-1 | search peak MB | time |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for name in sorted(k for k in s if k.startswith(("device-", "host-seed", "linear-"))
                           and not k.endswith("-fill")) + \
                sorted(k for k in s if k.endswith("-fill")):
            e = s[name]
            devices = ", ".join("%s %.3f (%.2f)%s" % (d["device"], d["predicted_ms"], d["limit_ms"],
                                                       "" if d["within_limit"] else " OVER")
                                for d in e["devices"])
            lines.append("| %s | %s | %d | %.1f M | %s | %.3f | %.2f%% | %.0f | %s |"
                         % (name, e["choices"], e["params"], e["macs"] / 1e6, devices,
                            e["measured_ms"], 100 * e["test_accuracy"],
                            e["search_peak_memory_mb"],
                            "%.0f s" % e["seconds"] if e.get("seconds") else "-"))
        if "baselines" in s:
            b = s["baselines"]
            lines += ["", "| model (host limit %.2f ms) | params | MACs | predicted ms | measured ms | "
                      "test top-1 |" % b["limit_ms"], "|---|---|---|---|---|---|"]
            e = b["searched"]
            lines.append("| searched %s | %d | %.1f M | %.3f | %.3f | %.2f%% |"
                         % (e["choices"], e["params"], e["macs"] / 1e6,
                            e["devices"][0]["predicted_ms"], e["measured_ms"],
                            100 * e["test_accuracy"]))
            for name, r in sorted(b["models"].items()):
                lines.append("| %s %s | %d | %.1f M | %.3f | %.3f | %.2f%% |"
                             % (name, " ".join(r["flags"]), r["params"], r["macs"] / 1e6,
                                r["predicted_ms"], r["measured_ms"], 100 * r["test_accuracy"]))
        if "memory" in s:
            m = s["memory"]
            lines += ["", "memory: search step's activation arena %.1f MB, training the largest "
                      "architecture (%s) %.1f MB; search process peak %.0f MB"
                      % (m["search_train_arena_mb"], m["largest"], m["largest_train_arena_mb"],
                         m["search_peak_memory_mb"])]
        print("\n".join(lines))

    def all(self):
        self.search("device-all", self.space, [])

    def fill(self):
        """Every finished search derived again with --derive=fill (no new
        search: --from-search), retrained alike."""
        runs = [("device-host-fmnist", self.space, ["--only", "host-fmnist"]),
                ("device-all", self.space, [])]
        if self.a.fill_all:
            runs += [("host-seed-1", self.space, ["--only", "host-fmnist", "--seed", "1"]),
                     ("host-seed-2", self.space, ["--only", "host-fmnist", "--seed", "2"])]
            for name in ("conv", "mbconv"):
                runs.append(("linear-" + name,
                             os.path.join(self.root, "examples/fmnist_space_%s.qd" % name),
                             ["--only", "host-fmnist"]))
        for name, space, extra in runs:
            if os.path.exists(os.path.join(self.a.work, name, "search", "search.json")):
                self.search(name + "-fill", space, extra + [
                    "--derive", "fill", "--from-search", os.path.join(self.a.work, name)])

    def overhead(self):
        """A weight step of the supernet on one path against training that
        architecture compiled alone (train --benchmark), interleaved in one
        run, batch 64: what sampling one path costs beyond the path itself
        (the gate ops of every candidate, the path filter)."""
        out = os.path.join(self.a.work, "overhead")
        os.makedirs(out, exist_ok=True)
        log = os.path.join(out, "log.txt")
        supernet = os.path.join(out, "supernet")
        if not os.path.exists(os.path.join(supernet, "build", "search")):
            run([self.a.qdsl, "compile", self.space, "--search", "--target=x86-64-avx2", "-o",
                 supernet, "--device", self.host_profile, "--only", "host-fmnist"], log=log)
            run([self.a.qdsl, "build", supernet], log=log)
        searched = self.summary.get("device-host-fmnist", {}).get("choices", "2,6,6,4,6,2")
        paths = {"host-searched": searched, "largest": "5,5,5,5,5,5", "smallest": "0,6,6,0,6,6"}
        results = {}
        for name, path in paths.items():
            project = os.path.join(out, name)
            if not os.path.exists(os.path.join(project, "build", "train")):
                run([self.a.qdsl, "compile", self.space, "--choices=" + path, "--train",
                     "--target=x86-64-avx2", "-o", project], log=log)
                run([self.a.qdsl, "build", project], log=log)
            best = {"supernet": 1e9, "fixed": 1e9}
            for _ in range(3):
                for kind, cmd in (("supernet", [os.path.join(supernet, "build", "search"),
                                                 "--benchmark", "--path", path]),
                                  ("fixed", [os.path.join(project, "build", "train"),
                                             "--benchmark"])):
                    r = json.loads(run(cmd + ["--batch", str(self.a.batch), "--steps", "10",
                                              "--threads", "2"]).strip().splitlines()[-1])
                    best[kind] = min(best[kind], r["step_s"])
            results[name] = {"path": path, "supernet_step_s": best["supernet"],
                             "fixed_step_s": best["fixed"],
                             "ratio": best["supernet"] / best["fixed"]}
            print("%-14s %s  supernet %.4f s  fixed %.4f s  ratio %.2f"
                  % (name, path, best["supernet"], best["fixed"], results[name]["ratio"]))
        self.summary["overhead"] = results
        self.save()

    def plot(self):
        """docs/nas/accuracy-latency.svg: test top-1 against latency measured
        on this machine (remeasure's profile protocol where it ran, else the
        run's own), every model of the set, the host limit dashed."""
        s = self.summary
        again = s.get("remeasure", {})
        groups = {}
        def add(group, directory, label, accuracy, measured):
            ms = again.get(directory, {}).get("rounds_ms", measured)
            groups.setdefault(group, []).append((ms, 100 * accuracy, label))
        for name, e in s.items():
            if not isinstance(e, dict) or "choices" not in e:
                continue
            group = ("MBConv space (searched)" if name.startswith("linear-mbconv") else
                     "ConvBlock space (searched)" if name.startswith("linear-conv") else
                     "QuadraBlock space, --derive=fill" if name.endswith("-fill") else
                     "QuadraBlock space (searched)")
            # Searches for other devices' limits alone are not on the host's axis.
            if name in ("device-cortex-a76", "device-myriad-vpu", "device-all"):
                continue
            add(group, name, e["choices"], e["test_accuracy"], e["measured_ms"])
        for name, r in s.get("baselines", {}).get("models", {}).items():
            directory = [r["directory"]] if "directory" in r else \
                [d for d in again if d == "baseline-" + name or
                 (name == "hand-scaled" and d.startswith("baseline-hand-"))]
            group = "random from the space" if name.startswith("random") else \
                "hand-scaled fashion_mnist.qd" if name.startswith("hand") else "uniform"
            add(group, directory[0] if directory else name, name, r["test_accuracy"],
                r["measured_ms"])
        points = [p for g in groups.values() for p in g]
        if not points:
            return
        limit = s.get("baselines", {}).get("limit_ms", self.host_limit())
        x_lo, x_hi = 0.0, max(max(p[0] for p in points), limit) * 1.1
        y_lo = min(p[1] for p in points) - 0.5
        y_hi = max(p[1] for p in points) + 0.5
        w, h, left, bottom, top, right = 720, 440, 60, 50, 20, 250
        X = lambda v: left + (v - x_lo) / (x_hi - x_lo) * (w - left - right)
        Y = lambda v: top + (y_hi - v) / (y_hi - y_lo) * (h - top - bottom)
        colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#7f7f7f"]
        out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
               'font-family="sans-serif" font-size="11">' % (w, h),
               '<rect width="100%" height="100%" fill="white"/>',
               '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
               % (left, h - bottom, w - right, h - bottom),
               '<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>'
               % (left, top, left, h - bottom)]
        for i in range(6):
            xv = x_lo + i * (x_hi - x_lo) / 5
            yv = y_lo + i * (y_hi - y_lo) / 5
            out.append('<text x="%.1f" y="%d" text-anchor="middle">%.2f</text>'
                       % (X(xv), h - bottom + 15, xv))
            out.append('<text x="%d" y="%.1f" text-anchor="end">%.1f</text>'
                       % (left - 5, Y(yv) + 4, yv))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">latency measured on this '
                   'machine, batch 1 (ms)</text>' % ((left + w - right) / 2, h - 12))
        out.append('<text x="14" y="%.1f" transform="rotate(-90 14 %.1f)" text-anchor="middle">'
                   'Fashion-MNIST test top-1 (%%)</text>' % ((top + h - bottom) / 2,
                                                             (top + h - bottom) / 2))
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="gray" '
                   'stroke-dasharray="5,4"/>' % (X(limit), top, X(limit), h - bottom))
        out.append('<text x="%.1f" y="%d" fill="gray">host limit %.2f ms</text>'
                   % (X(limit) + 4, top + 12, limit))
        for i, (group, pts) in enumerate(sorted(groups.items())):
            c = colours[i % len(colours)]
            for ms, acc, label in pts:
                out.append('<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s: %.3f ms, '
                           '%.2f%%</title></circle>' % (X(ms), Y(acc), c, label, ms, acc))
            out.append('<circle cx="%d" cy="%d" r="4" fill="%s"/>' % (w - right + 15, top + 10 + 18 * i, c))
            out.append('<text x="%d" y="%d">%s (%d)</text>' % (w - right + 25, top + 14 + 18 * i,
                                                              group, len(pts)))
        out.append("</svg>")
        path = os.path.join(self.root, "docs", "nas", "accuracy-latency.svg")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(out) + "\n")
        os.replace(path + ".tmp", path)
        print("wrote " + path)

    def linear(self):
        # The quadratic search under the same limit and budget, then the linear spaces.
        self.search("device-host-fmnist", self.space, ["--only", "host-fmnist"])
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
    p.add_argument("--arch-lr", type=float, default=1e-2)
    p.add_argument("--random", type=int, default=8,
                   help="random architectures within the limit among the baselines")
    p.add_argument("--arch-every", type=int, default=2)
    p.add_argument("--train-subset", type=int, default=20000)
    p.add_argument("--fill-all", action="store_true",
                   help="fill: also the seeds' and the linear spaces' searches (not only the "
                        "host's and the all-limits one)")
    p.add_argument("experiments", nargs="*",
                   default=["devices", "memory", "baselines", "seeds", "linear"])
    args = p.parse_args()
    e = Experiments(args)
    for name in args.experiments:
        getattr(e, name)()
    print(json.dumps(e.summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
