#!/usr/bin/env python3
"""Does the architecture search earn its keep? The experiments of docs/NAS.md,
"Searched against random", regenerated.

    /usr/bin/python3 bench/nas_proof.py --qdsl build/bin/qdsl --work runs/proof EXPERIMENT...

Experiments:
  matched LIMIT_MS   qdsl search on examples/fmnist_space.qd, the host limit only at
                     LIMIT_MS, with --retrain-seeds 3 and --baselines N (--baselines):
                     the searched model against N random architectures within 3% of its
                     predicted latency, all retrained with the same recipe; Welch's test,
                     the supernet's ranking and Kendall's tau come from its report.json
  fill LIMIT_MS      `matched LIMIT_MS`'s search derived again with --derive fill (no new
                     search: --from-search), then compared as `matched` does: for a tight
                     limit whose argmax leaves most of the budget unused, where few
                     architectures share its latency
  ablation LIMIT_MS  the same search with --latency-only (the gates' cross-entropy
                     gradient switched off): if it derives the same architecture, the
                     accuracy signal is unused
  ranking LIMIT_MS   does the supernet rank architectures as training them alone does?
                     --ranking-count random architectures within the limit (the ones
                     `matched LIMIT_MS` scored) retrained with --ranking-seeds seeds each,
                     against their scores by that search's supernet and by supernets
                     trained again with other settings (--variant NAME:FLAGS, repeatable:
                     the search program in the same project); Kendall's tau-b of each
  planted            the search program on examples/fmnist_space_mixed.qd (QuadraBlock,
                     ConvBlock, SkipBlock per layer) with --seeds: the share of quadratic
                     candidates in its final probabilities and in its argmax, against
                     their share among random architectures within the limit

The budget of every run is the same (--epochs, --warmup-epochs, --retrain-epochs,
--train-subset, --validation, --arch-lr, --arch-every, batch 64, 2 threads); runs that
finished are kept (delete a directory to redo it). summary.md collects the figures.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time


def run(cmd, log):
    print("+ " + " ".join(cmd), flush=True)
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT)


class Proof:
    def __init__(self, a):
        self.a = a
        self.root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.profile = os.path.join(self.root, "profiles/host-fmnist.json")
        os.makedirs(a.work, exist_ok=True)
        self.summary = os.path.join(a.work, "summary.md")

    def budget(self):
        a = self.a
        return ["--epochs", str(a.epochs), "--warmup-epochs", str(a.warmup_epochs),
                "--train-subset", str(a.train_subset), "--validation", str(a.validation),
                "--arch-lr", str(a.arch_lr), "--arch-every", str(a.arch_every),
                "--seed", str(a.seed)] + a.search_flags.split()

    def note(self, text):
        print(text, flush=True)
        with open(self.summary, "a") as f:
            f.write(text + "\n")

    def search(self, name, limit, extra, derive_from=None):
        name += self.a.tag
        out = os.path.join(self.a.work, name)
        # A derivation from an earlier search takes none of the search's flags.
        budget = self.budget() if derive_from is None else [
            "--train-subset", str(self.a.train_subset), "--seed", str(self.a.seed),
            "--from-search", derive_from]
        if not os.path.exists(os.path.join(out, "report.json")):
            run([self.a.qdsl, "search", os.path.join(self.root, "examples/fmnist_space.qd"),
                 "--only", "host-fmnist", "--device", self.profile,
                 "--latency-limit", "%gms" % limit, "-o", out, "--overwrite",
                 "--retrain-epochs", str(self.a.retrain_epochs), "--threads", "2", "-j", "2"]
                + budget + extra, os.path.join(self.a.work, name + ".log"))
        with open(os.path.join(out, "report.json")) as f:
            return json.load(f)

    def matched(self, limit, fill=False):
        start = time.time()
        flags = ["--retrain-seeds", "3", "--baselines", str(self.a.baselines),
                 "--rank-samples", "20"]
        if fill:
            r = self.search("fill-%g" % limit, limit, flags + ["--derive", "fill"],
                            os.path.join(self.a.work, "matched-%g%s" % (limit, self.a.tag)))
        else:
            r = self.search("matched-%g" % limit, limit, flags)
        b, d, rank = r["baselines"], r["derived"], r["supernet_ranking"]
        tau = b.get("supernet_vs_retrained", {}).get("kendall_tau")
        self.note("### matched latency, host limit %g ms%s%s (%.0f min)"
                  % (limit, " " + self.a.search_flags if self.a.search_flags else "",
                     ", --derive fill" if fill else "",
                     (time.time() - start) / 60))
        self.note("- searched %s, predicted %.4f ms: test top-1 %s (mean %.2f%% ± %.2f)"
                  % (d["choices"], r["devices"][0]["predicted_ms"],
                     ", ".join("%.2f%%" % (100 * x) for x in d["test_accuracy_by_seed"]),
                     100 * b["searched_mean"], 100 * b["searched_sd"]))
        self.note("- %d random within 3%% of its latency: %.2f%% ± %.2f (%.2f–%.2f%%)"
                  % (len(b["models"]), 100 * b["baseline_mean"], 100 * b["baseline_sd"],
                     100 * min(m["accuracy"] for m in b["models"]),
                     100 * max(m["accuracy"] for m in b["models"])))
        t = b["test"]
        self.note("- %s t = %.2f, df = %.1f, p = %.4f" % (t["kind"], t["t"], t["df"], t["p"]))
        self.note("- supernet: derived ranks %d of %d random within the limit (scores %.2f%%, "
                  "random median %.2f%%); Kendall tau (supernet score vs retrained top-1, "
                  "%d architectures) %s"
                  % (rank["derived_rank"], rank["random_count"] + 1,
                     100 * rank["derived"]["accuracy"], 100 * rank["random_median"],
                     len(b["models"]) + 1, "%.2f" % tau if tau is not None else "n/a"))

    def ablation(self, limit):
        normal = self.search("matched-%g" % limit, limit,
                             ["--retrain-seeds", "3", "--baselines", str(self.a.baselines),
                              "--rank-samples", "20"])
        r = self.search("latency-only-%g" % limit, limit,
                        ["--latency-only", "--rank-samples", "0"])
        self.note("### --latency-only, host limit %g ms" % limit)
        self.note("- with the accuracy signal %s (%.2f%%), latency alone %s (%.2f%%): %s"
                  % (normal["derived"]["choices"], 100 * normal["derived"]["test_accuracy"],
                     r["derived"]["choices"], 100 * r["derived"]["test_accuracy"],
                     "the same architecture" if normal["derived"]["choices"] ==
                     r["derived"]["choices"] else "different architectures"))

    def ranking(self, limit):
        a = self.a
        base = os.path.join(a.work, "matched-%g%s" % (limit, a.tag))
        with open(os.path.join(base, "report.json")) as f:
            report = json.load(f)
        chosen = report["supernet_ranking"]["random"][:a.ranking_count]
        work = os.path.join(a.work, "ranking-%g" % limit)
        os.makedirs(work, exist_ok=True)
        log = os.path.join(work, "log.txt")
        space = os.path.join(self.root, "examples/fmnist_space.qd")
        retrained = []
        for i, arch in enumerate(chosen):
            project = os.path.join(work, "arch%d" % i)
            if not os.path.exists(os.path.join(project, "build", "train")):
                run([a.qdsl, "compile", space, "--choices=" + arch["choices"], "--train",
                     "--target", "x86-64-avx2", "-o", project], log)
                run([a.qdsl, "build", project, "-j", "2"], log)
            accuracies = []
            for seed in range(a.ranking_seeds):
                out = os.path.join(project, "train-seed%d" % seed)
                metrics = os.path.join(out, "metrics.jsonl")
                if not os.path.exists(os.path.join(out, "weights.safetensors")):
                    run([os.path.join(project, "build", "train"), "--epochs",
                         str(a.retrain_epochs), "--batch", "64", "--seed", str(seed),
                         "--train-subset", str(a.train_subset), "--threads", "2", "--out", out,
                         "--overwrite"], log)
                last = [json.loads(l) for l in open(metrics) if '"test_top1"' in l][-1]
                accuracies.append(last["test_top1"])
            retrained.append(sum(accuracies) / len(accuracies))
        paths = os.path.join(work, "paths.txt")
        with open(paths, "w") as f:
            f.write("".join(arch["choices"] + "\n" for arch in chosen))
        program = os.path.join(base, "supernet", "build", "search")
        data = ["--train-subset", str(a.train_subset), "--validation", str(a.validation),
                "--score-examples", str(a.validation), "--threads", "2"]
        self.note("### ranking, %d random architectures within %g ms, %d retraining seeds each"
                  % (len(chosen), limit, a.ranking_seeds))
        self.note("- retrained test top-1: %.2f–%.2f%%" % (100 * min(retrained),
                                                          100 * max(retrained)))
        # The variants train in a supernet project of this qdsl (the search's
        # may predate their flags): the same space and limit.
        fresh = os.path.join(work, "supernet")
        if a.variant and not os.path.exists(os.path.join(fresh, "build", "search")):
            run([a.qdsl, "compile", space, "--search", "--only", "host-fmnist", "--device",
                 self.profile, "--latency-limit", "%gms" % limit, "-o", fresh], log)
            run([a.qdsl, "build", fresh, "-j", "2"], log)
        for variant in ["search:"] + a.variant:
            name, flags = variant.split(":", 1)
            weights = os.path.join(base, "search", "supernet.safetensors")
            if name != "search":
                program = os.path.join(fresh, "build", "search")
                out = os.path.join(work, "supernet-" + name)
                weights = os.path.join(out, "supernet.safetensors")
                if not os.path.exists(weights):
                    # The budget's flags, those the variant gives replaced.
                    budget, extra = self.budget(), flags.split()
                    for k in range(0, len(budget), 2):
                        if budget[k] in extra:
                            budget[k:k + 2] = ["", ""]
                    run([program, "--out", out, "--overwrite", "--batch", "64", "--threads", "2"]
                        + [x for x in budget if x] + extra, log)
            scored = os.path.join(work, "scores-" + name)
            run([program, "--score", paths, "--weights", weights, "--out", scored] + data, log)
            with open(os.path.join(scored, "scores.json")) as f:
                scores = [s["accuracy"] for s in json.load(f)["scores"]]
            self.note("- supernet %s (%s): scores %.2f–%.2f%%, Kendall tau %.2f"
                      % (name, flags.strip() or "the search's own", 100 * min(scores),
                         100 * max(scores), kendall_tau(scores, retrained)))

    def planted(self):
        space = os.path.join(self.root, "examples/fmnist_space_mixed.qd")
        work = os.path.join(self.a.work, "planted")
        os.makedirs(work, exist_ok=True)
        log = os.path.join(work, "log.txt")
        estimate = json.loads(subprocess.run(
            [self.a.qdsl, "estimate", space, "--device", self.profile, "--json"],
            check=True, stdout=subprocess.PIPE, text=True).stdout)
        layers = estimate["layers"]
        limit = self.a.planted_limit
        supernet = os.path.join(work, "supernet")
        if not os.path.exists(os.path.join(supernet, "build", "search")):
            run([self.a.qdsl, "compile", space, "--search", "--device", self.profile,
                 "--latency-limit", "%gms" % limit, "-o", supernet], log)
            run([self.a.qdsl, "build", supernet, "-j", "2"], log)
        quadratic = [[c["candidate"].startswith("quadra") for c in l["candidates"]]
                     for l in layers]
        # Random architectures within the limit, by rejection.
        rng = random.Random(0)
        shares, drawn = [], 0
        while len(shares) < 20000 and drawn < 2000000:
            drawn += 1
            picks = [rng.randrange(len(l["candidates"])) for l in layers]
            ms = estimate["fixed_ms"] + sum(l["candidates"][p]["ms"]
                                            for l, p in zip(layers, picks))
            if ms <= limit:
                shares.append(sum(q[p] for q, p in zip(quadratic, picks)) / len(picks))
        random_share = sum(shares) / len(shares)
        self.note("### planted spread (examples/fmnist_space_mixed.qd, host limit %g ms)" % limit)
        self.note("- random within the limit: %.1f%% of the layers quadratic (%d of %d draws "
                  "within it)" % (100 * random_share, len(shares), drawn))
        for seed in self.a.seeds:
            out = os.path.join(work, "seed%d" % seed)
            if not os.path.exists(os.path.join(out, "supernet.safetensors")):
                budget = self.budget()
                budget[budget.index("--seed") + 1] = str(seed)
                run([os.path.join(supernet, "build", "search"), "--out", out, "--overwrite",
                     "--threads", "2", "--batch", "64"] + budget, log)
            with open(os.path.join(out, "search.json")) as f:
                result = json.load(f)
            mass = [sum(p for p, q in zip(l["probabilities"], quad) if q)
                    for l, quad in zip(result["layers"], quadratic)]
            picks = result["picks"]
            argmax_share = sum(q[p] for q, p in zip(quadratic, picks)) / len(picks)
            ms = estimate["fixed_ms"] + sum(l["candidates"][p]["ms"]
                                            for l, p in zip(layers, picks))
            names = [layers[i]["candidates"][p]["candidate"] for i, p in enumerate(picks)]
            self.note("- seed %d: quadratic probability per layer %s (mean %.1f%%); argmax %s "
                      "(%.0f%% quadratic, %.3f ms)"
                      % (seed, " ".join("%.2f" % m for m in mass), 100 * sum(mass) / len(mass),
                         ", ".join(names), 100 * argmax_share, ms))


def kendall_tau(x, y):
    """Kendall's tau-b, as tools/driver/Statistics computes it."""
    concordant = discordant = ties_x = ties_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = x[i] - x[j], y[i] - y[j]
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                ties_x += 1
            elif dy == 0:
                ties_y += 1
            elif (dx > 0) == (dy > 0):
                concordant += 1
            else:
                discordant += 1
    n = ((concordant + discordant + ties_x) * (concordant + discordant + ties_y)) ** 0.5
    return (concordant - discordant) / n if n else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--qdsl", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--retrain-epochs", type=int, default=5)
    p.add_argument("--train-subset", type=int, default=15000)
    p.add_argument("--validation", type=int, default=2500)
    p.add_argument("--arch-lr", type=float, default=0.02)
    p.add_argument("--arch-every", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baselines", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--planted-limit", type=float, default=0.35)
    p.add_argument("--search-flags", default="",
                   help="more flags for every search (e.g. \"--layer-scale-init 0.1\")")
    p.add_argument("--tag", default="", help="appended to the runs' directory names")
    p.add_argument("--ranking-count", type=int, default=12)
    p.add_argument("--ranking-seeds", type=int, default=2)
    p.add_argument("--variant", action="append", default=[],
                   help="NAME:FLAGS, a supernet trained again with FLAGS for `ranking`")
    p.add_argument("experiment", nargs="+",
                   help="matched LIMIT_MS | ablation LIMIT_MS | planted")
    a = p.parse_args()
    proof = Proof(a)
    args = list(a.experiment)
    while args:
        name = args.pop(0)
        if name in ("matched", "ablation", "ranking", "fill"):
            if not args:
                sys.exit("%s needs a limit in ms" % name)
            limit = float(args.pop(0))
            if name == "fill":
                proof.matched(limit, fill=True)
            else:
                getattr(proof, name)(limit)
        elif name == "planted":
            proof.planted()
        else:
            sys.exit("unknown experiment '%s'" % name)


if __name__ == "__main__":
    main()
