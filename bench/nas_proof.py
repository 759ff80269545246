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
  seeds LIMIT_MS     `matched LIMIT_MS`'s search again with each other seed of --seeds
                     (the seed of the search and of its retrainings; the training subset
                     stays --subset-seed 0): the architecture each derives, its 3
                     retrainings, and Welch's test against `matched`'s random
                     architectures where its predicted latency is within their 3% band
  ablation LIMIT_MS  the same search with --latency-only (the gates' cross-entropy
                     gradient switched off): if it derives the same architecture, the
                     accuracy signal is unused
  ranking LIMIT_MS   does the supernet rank architectures as training them alone does?
                     --ranking-count random architectures within the limit (the ones
                     `matched LIMIT_MS` scored) retrained with --ranking-seeds seeds each,
                     against their scores by that search's supernet and by supernets
                     trained again with other settings (--variant NAME:FLAGS, repeatable:
                     the search program in the same project); Kendall's tau-b of each
  table              a Table III for Fashion-MNIST: for the quadratic and the MBConv
                     space, the host profile calibrated on the space, one supernet
                     searched against the host limit, then derived for the A76 and the
                     VPU by --from-search --derive accuracy (no new training); every
                     model retrained with --retrain-seeds 3, its MACs, parameters and
                     predicted latency on all three devices
  planted            the search program on examples/fmnist_space_mixed.qd (QuadraBlock,
                     ConvBlock, SkipBlock per layer) with --seeds: the share of quadratic
                     candidates in its final probabilities and in its argmax, against
                     their share among random architectures within the limit

Every search keeps the profiles as they are (--no-calibrate): the shipped
host profile's predictions are the comparisons' common currency, and
`table` calibrates its own first. The budget of every run is the same (--epochs, --warmup-epochs, --retrain-epochs,
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
                 "--retrain-epochs", str(self.a.retrain_epochs), "--threads", "2", "-j", "2",
                 # The shipped profile as it is: its predictions are these
                 # comparisons' common currency (docs/NAS.md).
                 "--no-calibrate"]
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

    def seeds(self, limit):
        first = self.search("matched-%g" % limit, limit,
                            ["--retrain-seeds", "3", "--baselines", str(self.a.baselines),
                             "--rank-samples", "20"])
        band = first["devices"][0]["predicted_ms"]
        baseline = [m["accuracy"] for m in first["baselines"]["models"]]
        self.note("### search seeds, host limit %g ms" % limit)
        pooled = []
        for seed in self.a.seeds:
            if seed == self.a.seed:
                r = first
            else:
                saved = self.a.seed
                self.a.seed = seed
                r = self.search("matched-%g-seed%d" % (limit, seed), limit,
                                ["--retrain-seeds", "3", "--rank-samples", "0"])
                self.a.seed = saved
            d, ms = r["derived"], r["devices"][0]["predicted_ms"]
            accuracy = d["test_accuracy_by_seed"]
            pooled += accuracy
            inside = abs(ms - band) <= 0.03 * band
            line = ("- seed %d: %s, predicted %.4f ms, test top-1 %s (mean %.2f%%)"
                    % (seed, d["choices"], ms, ", ".join("%.2f%%" % (100 * x) for x in accuracy),
                       100 * sum(accuracy) / len(accuracy)))
            if inside:
                t, df, pvalue = welch(accuracy, baseline)
                line += "; against the %d random at %.4f ms ± 3%%: t = %.2f, df = %.1f, p = %.4f" \
                    % (len(baseline), band, t, df, pvalue)
            else:
                line += "; outside the random architectures' band (%.4f ms ± 3%%)" % band
            self.note(line)
        mean = sum(pooled) / len(pooled)
        sd = (sum((x - mean) ** 2 for x in pooled) / (len(pooled) - 1)) ** 0.5
        self.note("- pooled over %d retrainings: %.2f%% ± %.2f" % (len(pooled), 100 * mean, 100 * sd))

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
                 self.profile, "--latency-limit", "%gms" % limit, "--no-calibrate", "-o", fresh],
                log)
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

    def table(self):
        a = self.a
        spaces = [("QuadraBlock", "examples/fmnist_space.qd"),
                  ("MBConv", "examples/fmnist_space_mbconv.qd")]
        # The space's own limits (examples/fmnist_space.qd) for the published-figure
        # devices; the host's from --table-host-limit, on the calibrated profile.
        devices = [("host-fmnist", a.table_host_limit), ("cortex-a76", 0.45),
                   ("myriad-vpu", 1.8)]
        rows = []
        for label, file in spaces:
            space = os.path.join(self.root, file)
            work = os.path.join(a.work, "table", label)
            log = os.path.join(work, "log.txt")
            os.makedirs(os.path.join(work, "profile"), exist_ok=True)
            # Named as the device so that the space's constraint takes it.
            profile = os.path.join(work, "profile", "host-fmnist.json")
            if not os.path.exists(profile):
                run([a.qdsl, "profile", space, "--calibrate", self.profile, "-o", profile,
                     "--threads", "2"], log)
            host = os.path.join(work, devices[0][0])
            for device, limit in devices:
                out = os.path.join(work, device)
                if os.path.exists(os.path.join(out, "report.json")):
                    continue
                # (The host profile was calibrated here just above.)
                common = [a.qdsl, "search", space, "--only", device, "-o", out, "--overwrite",
                          "--retrain-epochs", str(a.retrain_epochs), "--retrain-seeds", "3",
                          "--threads", "2", "-j", "2", "--no-calibrate"]
                if device == devices[0][0]:
                    run(common + ["--device", profile, "--latency-limit", "%gms" % limit,
                                  "--rank-samples", "20"] + self.budget(), log)
                else:
                    # The space's own limit on the device (its shipped profile).
                    run(common + ["--train-subset", str(a.train_subset), "--seed", str(a.seed),
                                  "--from-search", host, "--derive", "accuracy"], log)
            for device, limit in devices:
                out = os.path.join(work, device)
                with open(os.path.join(out, "report.json")) as f:
                    d = json.load(f)["derived"]
                estimate = json.loads(subprocess.run(
                    [a.qdsl, "estimate", os.path.join(out, "derived.qd"), "--device", profile,
                     "--json"], check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                    text=True).stdout)
                predicted = {c["device"]: c["predicted_ms"] for c in estimate["constraints"]}
                accuracy = d["test_accuracy_by_seed"]
                mean = sum(accuracy) / len(accuracy)
                sd = (sum((x - mean) ** 2 for x in accuracy) / (len(accuracy) - 1)) ** 0.5
                rows.append("| %s | %s (%g ms) | %s | %.2f M | %.1f K | %s | %.2f%% ± %.2f |"
                            % (label, device, limit, d["choices"], d["macs"] / 1e6,
                               d["params"] / 1e3,
                               " / ".join("%.3f" % predicted[n] for n, _ in devices),
                               100 * mean, 100 * sd))
        self.note("### Table III for Fashion-MNIST (one supernet per space, searched for the "
                  "host, derived for the others by accuracy)")
        self.note("| space | searched for | choices | MACs | params | predicted ms host / A76 / "
                  "VPU | test top-1 (3 retrainings) |")
        self.note("|---|---|---|---|---|---|---|")
        for row in rows:
            self.note(row)

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
                 "--latency-limit", "%gms" % limit, "--no-calibrate", "-o", supernet], log)
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


def welch(x, y):
    """Welch's two-sided test: t, its degrees of freedom and p (the t density
    integrated numerically: this Python has no SciPy)."""
    import math
    mx, my = sum(x) / len(x), sum(y) / len(y)
    vx = sum((v - mx) ** 2 for v in x) / (len(x) - 1) / len(x)
    vy = sum((v - my) ** 2 for v in y) / (len(y) - 1) / len(y)
    t = (mx - my) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1))
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    density = lambda u: math.exp(log_c - (df + 1) / 2 * math.log1p(u * u / df))
    # P(|T| <= |t|) by Simpson's rule, then the two tails.
    n, a = 20000, abs(t)
    h = a / n
    inner = density(0) + density(a) + sum((4 if k % 2 else 2) * density(k * h)
                                          for k in range(1, n))
    return t, df, max(0.0, 1 - 2 * inner * h / 3)


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
    p.add_argument("--table-host-limit", type=float, default=0.175,
                   help="the host limit (ms) of `table`, on the profile calibrated here: "
                   "the space's 0.35 ms is met by every architecture on a machine twice "
                   "as fast as the one profiled")
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
        if name in ("matched", "ablation", "ranking", "fill", "seeds"):
            if not args:
                sys.exit("%s needs a limit in ms" % name)
            limit = float(args.pop(0))
            if name == "fill":
                proof.matched(limit, fill=True)
            else:
                getattr(proof, name)(limit)
        elif name in ("planted", "table"):
            getattr(proof, name)()
        else:
            sys.exit("unknown experiment '%s'" % name)


if __name__ == "__main__":
    main()
