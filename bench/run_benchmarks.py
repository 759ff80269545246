"""qdsl's generated code next to PyTorch, measured in the same run.

    bench/run_benchmarks.py --qdsl build/bin/qdsl [--work DIR] [--rounds 3]
                            [--json out.json] [--markdown out.md]

Builds what it measures (a few minutes), then alternates qdsl and PyTorch
measurements `rounds` times and keeps each one's best, so that a noisy
shared machine hurts both alike. All on 2 threads. Prints a Markdown table
(docs/PERFORMANCE.md holds the last one) and, with --json, the figures.

  * the machine's FMA peak (`qdsl machine`, codegen/latency/HostMachine.cpp);
  * the quadratic depthwise convolution (k = 7): qdsl's fused kernel, the
    unfused pipeline qdsl generates after --quadra-expand-qdwconv, and
    PyTorch's three depthwise convolutions + addcmul;
  * QuadraNet36-T, QuadraNet25-T and ConvBlock36-T inference at 224×224,
    batch 1 and 8: images per second.
"""
import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import pytorch_env, run, write_outputs  # noqa: E402

QDWCONV_SHAPES = [(8, 256, 14), (8, 64, 56), (1, 64, 56)]
MODELS = [("quadranet36_t", "QuadraNet36-T"), ("quadranet25_t", "QuadraNet25-T"),
          ("convblock36_t", "ConvBlock36-T")]


def build_project(qdsl, source, work, name, flags=()):
    """Compiles and builds once; again whenever qdsl is newer than the project."""
    directory = os.path.join(work, name)
    predict = os.path.join(directory, "build", "predict")
    if (not os.path.exists(predict)
            or os.path.getmtime(qdsl) > os.path.getmtime(os.path.join(directory, "model.mlir"))):
        run([qdsl, "compile", source, "--target", "x86-64-avx2", "-o", directory] + list(flags))
        run([qdsl, "build", directory])
    return os.path.join(directory, "build", "predict")


def numpy_input(path, shape):
    import numpy as np
    if not os.path.exists(path):
        np.save(path, np.random.default_rng(0).standard_normal(shape, dtype=np.float32))
    return path


def time_predict(predict, x, repeat):
    out = run([predict, "--input", x, "--output", x + ".out.npy", "--threads", "2",
               "--repeat", str(repeat)]).stderr
    return float(re.search(r"best ([0-9.]+) ms", out).group(1))


def pytorch(args):
    return json.loads(run([sys.executable, os.path.join(ROOT, "bench", "pytorch_quadranet.py")]
                          + args, env=pytorch_env()).stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)

    peak = max(json.loads(run([args.qdsl, "machine", "--threads", "2", "--json"]).stdout)
               ["fma_peak_gflops"] for _ in range(3))

    results = {"fma_peak_gflops": peak, "qdwconv": [], "models": []}
    for n, c, hw in QDWCONV_SHAPES:
        source = os.path.join(args.work, "qdwconv_c%d_hw%d.qd" % (c, hw))
        with open(source, "w") as f:
            f.write("model QDW { input f32[%d, %d, %d] layer qdwconv(k = 7) }\n" % (hw, hw, c))
        fused = build_project(args.qdsl, source, args.work, "qdw_c%d_hw%d" % (c, hw))
        unfused = build_project(args.qdsl, source, args.work, "qdw_unfused_c%d_hw%d" % (c, hw),
                                ["--expand-qdwconv"])
        x = numpy_input(os.path.join(args.work, "x_%d_%d_%d.npy" % (n, c, hw)), (n, hw, hw, c))
        best = {"fused": 1e9, "unfused": 1e9, "pytorch": 1e9}
        for _ in range(args.rounds):
            best["fused"] = min(best["fused"], time_predict(fused, x, 20))
            best["unfused"] = min(best["unfused"], time_predict(unfused, x, 20))
            best["pytorch"] = min(best["pytorch"], pytorch(
                ["qdwconv", "--shape", str(n), str(c), str(hw)])["best_ms"])
        flops = 2.0 * n * c * hw * hw * (3 * 49 + 1)
        results["qdwconv"].append({"shape": [n, c, hw], "ms": best, "gflop": flops / 1e9})

    for name, title in MODELS:
        predict = build_project(args.qdsl, os.path.join(ROOT, "examples", name + ".qd"),
                                args.work, name)
        for batch in (1, 8):
            x = numpy_input(os.path.join(args.work, "img_%d.npy" % batch), (batch, 224, 224, 3))
            qdsl_ms, torch_ms = 1e9, 1e9
            for _ in range(args.rounds):
                qdsl_ms = min(qdsl_ms, time_predict(predict, x, 3 if batch == 8 else 5))
                torch_ms = min(torch_ms, pytorch(["bench", "--model", name, "--batch", str(batch),
                                                  "--repeat", "3"])["results"][0]["best_ms"])
            results["models"].append({"model": title, "batch": batch, "qdsl_ms": qdsl_ms,
                                      "pytorch_ms": torch_ms})

    # Halide's autoscheduler instead of qdsl's schedules, same kernels.
    auto = build_project(args.qdsl, os.path.join(ROOT, "examples", "quadranet36_t.qd"),
                         args.work, "quadranet36_t_mullapudi",
                         ["--autoschedule=Mullapudi2016"])
    x = numpy_input(os.path.join(args.work, "img_1.npy"), (1, 224, 224, 3))
    auto_ms = min(time_predict(auto, x, 2) for _ in range(args.rounds))
    manual = next(m for m in results["models"] if m["model"] == "QuadraNet36-T" and m["batch"] == 1)
    results["autoschedule"] = {"model": "QuadraNet36-T", "batch": 1, "mullapudi2016_ms": auto_ms,
                               "qdsl_ms": manual["qdsl_ms"]}

    lines = ["Machine FMA peak (2 threads, `qdsl machine`): %.0f GFLOP/s." % peak, "",
             "Quadratic depthwise convolution, k = 7 (ms; GFLOP/s; % of FMA peak):", "",
             "| N·C·H² | qdsl fused | qdsl unfused | PyTorch 3 convs + addcmul | fused vs PyTorch |",
             "|---|---|---|---|---|"]
    for q in results["qdwconv"]:
        n, c, hw = q["shape"]
        cells = []
        for key in ("fused", "unfused", "pytorch"):
            ms = q["ms"][key]
            gf = q["gflop"] / (ms / 1e3)
            cells.append("%.3f ms; %.0f; %.0f%%" % (ms, gf, 100 * gf / peak))
        lines.append("| %d·%d·%d² | %s | %.2f× |" % (n, c, hw, " | ".join(cells),
                                                  q["ms"]["pytorch"] / q["ms"]["fused"]))
    lines += ["", "Inference at 224×224 (images/s):", "",
              "| model | batch | qdsl | PyTorch | qdsl vs PyTorch |", "|---|---|---|---|---|"]
    for m in results["models"]:
        lines.append("| %s | %d | %.2f | %.2f | %.2f× |" % (
            m["model"], m["batch"], m["batch"] / (m["qdsl_ms"] / 1e3),
            m["batch"] / (m["pytorch_ms"] / 1e3), m["pytorch_ms"] / m["qdsl_ms"]))
    lines += ["", "QuadraNet36-T, batch 1, with Halide's Mullapudi2016 autoscheduler instead of "
              "qdsl's schedules: %.1f ms against %.1f ms (%.1f× slower)." % (
                  auto_ms, manual["qdsl_ms"], auto_ms / manual["qdsl_ms"])]
    write_outputs("\n".join(lines), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
