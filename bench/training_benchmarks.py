"""qdsl's generated training step next to PyTorch's, measured in the same run.

    bench/training_benchmarks.py --qdsl build/bin/qdsl [--work DIR] [--rounds 2]
                                 [--json out.json] [--markdown out.md] [--skip-large]

Builds what it measures (minutes: QuadraNet36-T's training project has
about 120 kernel configurations), then alternates qdsl and PyTorch
`rounds` times and keeps each one's best. All on 2 threads; PyTorch in its
best setting (OpenBLAS, tcmalloc, channels-last; bench/pytorch_training.py).

  * one training step (forward, loss, backward, gradient clipping, AdamW):
    the Fashion-MNIST example at batch 64 and QuadraNet36-T at 224x224,
    batch 16 — best step time, and peak resident memory above the process's
    before the first step; qdsl with the min-memory policy (its default)
    and paper (`train --benchmark`);
  * the quadratic depthwise convolution (k = 7) forward and backward under a
    pooled 10-way linear head, at N8·C256·14² and N8·C64·56²;
  * where QuadraNet36-T's min-memory step goes: `train --benchmark --profile`
    (kernel families, and the largest by group of layers).
PyTorch is measured in each of bench/benchlib.py's SETTINGS (OpenBLAS
flavour and wait policy; pointwise layers as oneDNN 1×1 convolutions or as
Linear in OpenBLAS) every round, the fastest kept.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import (SETTINGS, run, setting_env, setting_name,  # noqa: E402
                      widest_cpu_target, write_outputs)

QDWCONV_SHAPES = [(8, 256, 14), (8, 64, 56)]
# The default first.
POLICIES = [("min-memory", "_min"), ("paper", "_paper")]


def build_training(qdsl, target, source, work, name, flags=()):
    """Compiles and builds the training project for `target` (a folder of its
    own) once; again when qdsl is newer."""
    directory = os.path.join(work, target, name)
    train = os.path.join(directory, "build", "train")
    stamp = os.path.join(directory, "model.mlir")
    if not os.path.exists(train) or os.path.getmtime(qdsl) > os.path.getmtime(stamp):
        run([qdsl, "compile", source, "--train", "--target", target, "-o", directory]
            + list(flags))
        run([qdsl, "build", directory])
    return train


def qdsl_step(train, batch, steps):
    out = run([train, "--benchmark", "--batch", str(batch), "--steps", str(steps),
               "--threads", "2"]).stdout
    return json.loads(out.strip().splitlines()[-1])


def qdsl_profile(train, batch, steps):
    """`train --benchmark --profile`'s tables: where the step's time goes."""
    out = run([train, "--benchmark", "--batch", str(batch), "--steps", str(steps),
               "--threads", "2", "--profile"]).stdout
    return [line for line in out.splitlines() if not line.startswith("{")]


def pytorch(args, setting):
    out = run([sys.executable, os.path.join(ROOT, "bench", "pytorch_training.py")] + args,
              env=setting_env(setting)).stdout
    return json.loads(out.strip().splitlines()[-1])


def best(current, new):
    """Keeps the best time and the smallest peak seen so far."""
    if current is None:
        return dict(new)
    current["step_s"] = min(current["step_s"], new["step_s"])
    current["peak_over_start_mb"] = min(current["peak_over_start_mb"], new["peak_over_start_mb"])
    return current


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench-training"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-large", action="store_true",
                        help="leave out QuadraNet36-T (its build and steps take the longest)")
    parser.add_argument("--target",
                        help="qdsl's target (default: the widest x86 target this CPU runs)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    args.target = args.target or widest_cpu_target(args.qdsl)
    os.makedirs(args.work, exist_ok=True)

    def both_policies(example, name):
        source = os.path.join(ROOT, "examples", example + ".qd")
        return {policy: build_training(args.qdsl, args.target, source, args.work, name + suffix,
                                       ["--memory-policy", policy])
                for policy, suffix in POLICIES}

    cases = []  # (title, batch, {policy: train binary}, pytorch args, steps)
    cases.append(("Fashion-MNIST example", 64, both_policies("fashion_mnist", "fm"),
                  ["step", "--model", "fashion_mnist", "--batch", "64", "--steps", "5"], 5))
    if not args.skip_large:
        cases.append(("QuadraNet36-T 224²", 16, both_policies("quadranet36_t", "q36"),
                      ["step", "--model", "quadranet36_t", "--batch", "16", "--steps", "2"], 2))
    for n, c, hw in QDWCONV_SHAPES:
        source = os.path.join(args.work, "qdwconv_c%d_hw%d.qd" % (c, hw))
        with open(source, "w") as f:
            f.write("block qdw_head(x: tensor) {\n"
                    "  return linear(avgpool(qdwconv(x, k = 7)), out = 10)\n}\n"
                    "model QDWHead { input f32[%d, %d, %d]  layer qdw_head }\n" % (hw, hw, c))
        cases.append(("qdwconv k7 fwd+bwd %d·%d·%d²" % (n, c, hw), n, {
            "min-memory": build_training(args.qdsl, args.target, source, args.work,
                                         "qdw_c%d_hw%d" % (c, hw))},
            ["qdwconv", "--shape", str(n), str(c), str(hw), "--steps", "5"], 5))

    results = []
    for title, batch, trains, torch_args, steps in cases:
        entry = {"case": title, "batch": batch, "qdsl": {}, "pytorch_by_setting": {}}
        for _ in range(args.rounds):
            for policy, train in trains.items():
                entry["qdsl"][policy] = best(entry["qdsl"].get(policy),
                                             qdsl_step(train, batch, steps))
            # PyTorch in each of its settings; the fastest is its figure.
            for setting in SETTINGS:
                by_setting = entry["pytorch_by_setting"]
                name = setting_name(setting)
                by_setting[name] = best(by_setting.get(name), pytorch(torch_args, setting))
        entry["pytorch_setting"] = min(entry["pytorch_by_setting"],
                                       key=lambda name: entry["pytorch_by_setting"][name]["step_s"])
        entry["pytorch"] = entry["pytorch_by_setting"][entry["pytorch_setting"]]
        results.append(entry)
        print(json.dumps(entry), flush=True)

    profile = None
    if not args.skip_large:
        train = next(trains for title, _, trains, _, _ in cases
                     if title.startswith("QuadraNet36-T"))["min-memory"]
        profile = qdsl_profile(train, 16, 3)

    lines = ["qdsl's target: %s. " % args.target +
             "One training step (forward, loss, backward, clipping, AdamW), best of %d rounds, "
             "2 threads; memory: peak resident set above the process's before the first step. "
             "PyTorch: tcmalloc and the fastest (in brackets) of OpenBLAS's OpenMP flavour with "
             "either wait policy and its pthread flavour with PASSIVE, each with the pointwise "
             "layers as oneDNN 1×1 convolutions and as Linear in OpenBLAS." % args.rounds, "",
             "| case | batch | qdsl min-memory (default) | qdsl paper | PyTorch "
             "| speed vs PyTorch (min-memory; paper) | memory vs PyTorch (min-memory; paper) |",
             "|---|---|---|---|---|---|---|"]
    for e in results:
        torch = e["pytorch"]
        cells, speed, mem = [], [], []
        for policy, _ in POLICIES:
            q = e["qdsl"].get(policy)
            cells.append("%.3f s, %.0f MB" % (q["step_s"], q["peak_over_start_mb"]) if q else "–")
            if q:
                speed.append("%.2f×" % (torch["step_s"] / q["step_s"]))
                mem.append("%.2f×" % (q["peak_over_start_mb"] / torch["peak_over_start_mb"]))
        lines.append("| %s | %d | %s | %s | %.3f s, %.0f MB (%s) | %s | %s |" % (
            e["case"], e["batch"], cells[0], cells[1], torch["step_s"],
            torch["peak_over_start_mb"], e["pytorch_setting"], "; ".join(speed),
            "; ".join(mem)))
    if profile:
        lines += ["", "QuadraNet36-T, batch 16, min-memory: `train --benchmark --batch 16 "
                  "--steps 3 --profile` (seconds over the 3 steps):", "", "```"] + profile + ["```"]
        results.append({"case": "QuadraNet36-T profile", "lines": profile})
    write_outputs("\n".join(lines), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
