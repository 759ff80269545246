"""qdsl's generated code next to PyTorch, measured in the same run.

    bench/run_benchmarks.py --qdsl build/bin/qdsl [--work DIR] [--rounds 3]
                            [--json out.json] [--markdown out.md]

Builds what it measures (a few minutes), then alternates qdsl and its peers
`rounds` times and keeps each one's best, so that a noisy shared machine
hurts both alike. All on 2 threads. Prints a Markdown table
(docs/PERFORMANCE.md holds the last one) and, with --json, the figures.

  * the machine's FMA peak (`qdsl machine`, codegen/latency/HostMachine.cpp);
  * PyTorch's setting: tcmalloc, 2 threads, channels-last; OpenBLAS's
    flavour and the OpenMP wait policy (OpenMP with ACTIVE or PASSIVE,
    pthread with PASSIVE) and the pointwise layers as 1×1 convolutions in
    oneDNN or as Linear in OpenBLAS, each of the six measured on
    QuadraNet36-T at batch 8, the fastest kept (bench/benchlib.py);
  * the quadratic depthwise convolution (k = 7): qdsl's fused kernel, the
    unfused pipeline qdsl generates after --quadra-expand-qdwconv, and
    PyTorch's three depthwise convolutions + addcmul;
  * ONNX Runtime's setting: graph optimisations all, 2 intra-op threads,
    its sequential and parallel execution modes measured on QuadraNet36-T at
    batch 8, the faster kept;
  * QuadraNet36-T, QuadraNet25-T and ConvBlock36-T inference at 224×224,
    batch 1 and 8: images per second, qdsl, PyTorch and ONNX Runtime (on
    the model's `qdsl export --format onnx` file);
  * where QuadraNet36-T's time goes, per kernel family (`predict
    --profile-json`, each kernel's best call), with GFLOP/s and % of peak;
    its channel MLP per stage (one ln_mlp_scale_residual kernel) next to
    OpenBLAS's sgemm and oneDNN's 1×1 convolution on its two products
    (bench/gemm_peers.cpp).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import (OPENBLAS_OPENMP, choose_setting, run, setting_env,  # noqa: E402
                      setting_name, target_peak, widest_cpu_target, write_outputs)

QDWCONV_SHAPES = [(8, 256, 14), (8, 64, 56), (1, 64, 56)]
MODELS = [("quadranet36_t", "QuadraNet36-T"), ("quadranet25_t", "QuadraNet25-T"),
          ("convblock36_t", "ConvBlock36-T")]


def build_project(qdsl, target, source, work, name, flags=()):
    """Compiles and builds once for `target` (a folder of its own); again
    whenever qdsl is newer than the project."""
    directory = os.path.join(work, target, name)
    predict = os.path.join(directory, "build", "predict")
    if (not os.path.exists(predict)
            or os.path.getmtime(qdsl) > os.path.getmtime(os.path.join(directory, "model.mlir"))):
        run([qdsl, "compile", source, "--target", target, "-o", directory] + list(flags))
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


def pytorch(args, env):
    return json.loads(run([sys.executable, os.path.join(ROOT, "bench", "pytorch_quadranet.py")]
                          + args, env=env).stdout.strip().splitlines()[-1])


ORT_RUNNER = os.path.join(ROOT, "bench", "ort_run.js")
ORT_MODES = ("sequential", "parallel")


def ort_ms(model_file, x_nchw, mode, repeat):
    """ONNX Runtime (npm's onnxruntime-node) on `qdsl export`'s ONNX file:
    all graph optimisations, 2 intra-op threads, execution `mode`; the best
    of `repeat` runs after two warm-up runs."""
    out = run(["node", ORT_RUNNER, "--model", model_file, "--input", x_nchw, "--threads", "2",
               "--mode", mode, "--optimization", "all", "--repeat", str(repeat)]).stdout
    got = json.loads(out.strip().splitlines()[-1])
    return 1e3 * min(got["seconds"]), got["version"]


def export_onnx(qdsl, name, work):
    """The model's ONNX file (initial weights: the times do not depend on them)."""
    path = os.path.join(work, name + ".onnx")
    run([qdsl, "export", os.path.join(ROOT, "examples", name + ".qd"), "--format", "onnx",
         "-o", path])
    return path


def nchw_copy(x):
    """The NHWC input file as the exported model takes it, channels first."""
    path = x.replace(".npy", "_nchw.npy")
    if not os.path.exists(path):
        np.save(path, np.ascontiguousarray(np.load(x).transpose(0, 3, 1, 2)))
    return path


def pytorch_model_ms(name, batch, env, repeat=3):
    return pytorch(["bench", "--model", name, "--batch", str(batch), "--repeat", str(repeat)],
                   env)["results"][0]["best_ms"]


# QuadraNet36-T's stages: channels and map size at 224×224 (stage s has
# 64·2^s channels on a 56/2^s map; the expanding layer makes 4× channels).
STAGES = [(64, 56), (128, 28), (256, 14), (512, 7)]
POINTWISE = ("ln_pwconv_gelu", "pwconv_scale_residual")
# The channel MLP as one kernel: both products.
MLP = "ln_mlp_scale_residual"


def family_flops(kernel, family, batch):
    """FLOP of one call of a QuadraNet36-T kernel (multiply-adds count 2),
    from its name (stages.S.B/..., downsample.D/...); None where the family
    has no simple count."""
    where = kernel.split("/")[0]
    if where.startswith("stages."):
        c, hw = STAGES[int(where.split(".")[1])]
        rows = batch * hw * hw
        if family in POINTWISE:
            return 2.0 * rows * c * 4 * c
        if family == MLP:
            return 2 * 2.0 * rows * c * 4 * c
        if family == "ln_qdwconv_scale_residual":
            return 2.0 * rows * c * (3 * 49 + 1)
    if where.startswith("downsample.") and family == "ln_conv":
        c, hw = STAGES[int(where.split(".")[1]) + 1]
        return 2.0 * batch * hw * hw * (c // 2) * 4 * c
    if family == "conv_ln":
        return 2.0 * batch * 56 * 56 * 48 * 64
    return None


def kernel_profile(predict, x, repeat, rounds):
    """Each kernel's best call over `rounds` runs of `predict --profile-json`:
    {kernel: (family, seconds)}."""
    best = {}
    profile = x + ".profile.json"
    for _ in range(rounds):
        run([predict, "--input", x, "--output", x + ".out.npy", "--threads", "2", "--repeat",
             str(repeat), "--profile-json", profile])
        for k in json.load(open(profile))["kernels"]:
            seconds = min(k["seconds"])
            if k["kernel"] not in best or seconds < best[k["kernel"]][1]:
                best[k["kernel"]] = (k["family"], seconds)
    return best


def gemm_peers_program(work):
    """bench/gemm_peers.cpp built against oneDNN and OpenBLAS's OpenMP
    flavour; None (with a message) where either is missing."""
    compiler = shutil.which("clang++-19") or shutil.which("c++")
    if not compiler or not os.path.exists("/usr/include/dnnl.hpp") or not os.path.exists(
            os.path.join(OPENBLAS_OPENMP, "libopenblas.so.0")):
        print("gemm peers SKIPPED: needs a C++ compiler, libdnnl-dev and libopenblas0-openmp",
              file=sys.stderr)
        return None
    program = os.path.join(work, "gemm_peers")
    source = os.path.join(ROOT, "bench", "gemm_peers.cpp")
    if not os.path.exists(program) or os.path.getmtime(source) > os.path.getmtime(program):
        run([compiler, "-O2", "-std=c++17", source, "-o", program, "-ldnnl",
             "-L" + OPENBLAS_OPENMP, "-l:libopenblas.so.0", "-Wl,-rpath," + OPENBLAS_OPENMP])
    return program


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-autoschedule", action="store_true",
                        help="leave out QuadraNet36-T under Halide's autoscheduler (its build "
                             "takes minutes)")
    parser.add_argument("--target",
                        help="qdsl's target (default: the widest x86 target this CPU runs)")
    parser.add_argument("--json")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    args.target = args.target or widest_cpu_target(args.qdsl)
    os.makedirs(args.work, exist_ok=True)

    # The peak at the target's vector width: what its kernels could reach.
    peak = target_peak(args.qdsl, args.target)

    results = {"fma_peak_gflops": peak, "target": args.target, "qdwconv": [], "models": []}

    # PyTorch's setting: OpenBLAS flavour and wait policy measured, the
    # fastest kept.
    setting, by_setting = choose_setting(
        lambda env: pytorch_model_ms("quadranet36_t", 8, env, repeat=2))
    torch_env = setting_env(setting)
    blas = pytorch(["bench", "--model", "quadranet36_t", "--batch", "1", "--repeat", "1"],
                   torch_env)["blas_library"]
    results["pytorch_setting"] = {"chosen": setting_name(setting), "blas_library": blas,
                                  "quadranet36_t_batch8_ms": by_setting}
    for n, c, hw in QDWCONV_SHAPES:
        source = os.path.join(args.work, "qdwconv_c%d_hw%d.qd" % (c, hw))
        with open(source, "w") as f:
            f.write("model QDW { input f32[%d, %d, %d] layer qdwconv(k = 7) }\n" % (hw, hw, c))
        fused = build_project(args.qdsl, args.target, source, args.work,
                              "qdw_c%d_hw%d" % (c, hw))
        unfused = build_project(args.qdsl, args.target, source, args.work,
                                "qdw_unfused_c%d_hw%d" % (c, hw),
                                ["--expand-qdwconv"])
        x = numpy_input(os.path.join(args.work, "x_%d_%d_%d.npy" % (n, c, hw)), (n, hw, hw, c))
        best = {"fused": 1e9, "unfused": 1e9, "pytorch": 1e9}
        for _ in range(args.rounds):
            best["fused"] = min(best["fused"], time_predict(fused, x, 20))
            best["unfused"] = min(best["unfused"], time_predict(unfused, x, 20))
            best["pytorch"] = min(best["pytorch"], pytorch(
                ["qdwconv", "--shape", str(n), str(c), str(hw)], torch_env)["best_ms"])
        flops = 2.0 * n * c * hw * hw * (3 * 49 + 1)
        results["qdwconv"].append({"shape": [n, c, hw], "ms": best, "gflop": flops / 1e9})

    # ONNX Runtime's setting: its execution modes measured on QuadraNet36-T at
    # batch 8, the faster kept (graph optimisations all, 2 intra-op threads).
    x8 = numpy_input(os.path.join(args.work, "img_8.npy"), (8, 224, 224, 3))
    onnx36 = export_onnx(args.qdsl, "quadranet36_t", args.work)
    ort_modes = {}
    for _ in range(2):
        for mode in ORT_MODES:
            ms, ort_version = ort_ms(onnx36, nchw_copy(x8), mode, 2)
            ort_modes[mode] = min(ort_modes.get(mode, 1e9), ms)
    ort_mode = min(ort_modes, key=ort_modes.get)
    results["ort_setting"] = {"chosen": ort_mode, "version": ort_version,
                              "quadranet36_t_batch8_ms": ort_modes}

    for name, title in MODELS:
        predict = build_project(args.qdsl, args.target,
                                os.path.join(ROOT, "examples", name + ".qd"), args.work, name)
        onnx_file = export_onnx(args.qdsl, name, args.work)
        for batch in (1, 8):
            x = numpy_input(os.path.join(args.work, "img_%d.npy" % batch), (batch, 224, 224, 3))
            qdsl_ms, torch_ms, ort_best = 1e9, 1e9, 1e9
            # Rounds alternate the three, so that drift hits them alike.
            for _ in range(args.rounds):
                qdsl_ms = min(qdsl_ms, time_predict(predict, x, 3 if batch == 8 else 5))
                torch_ms = min(torch_ms, pytorch_model_ms(name, batch, torch_env))
                ort_best = min(ort_best, ort_ms(onnx_file, nchw_copy(x), ort_mode,
                                                3 if batch == 8 else 5)[0])
            results["models"].append({"model": title, "batch": batch, "qdsl_ms": qdsl_ms,
                                      "pytorch_ms": torch_ms, "ort_ms": ort_best})

    # Where QuadraNet36-T's time goes, and its pointwise layers next to
    # OpenBLAS and oneDNN on the same shapes.
    predict = build_project(args.qdsl, args.target,
                            os.path.join(ROOT, "examples", "quadranet36_t.qd"), args.work,
                            "quadranet36_t")
    peers = gemm_peers_program(args.work)
    results["families"], results["pointwise"] = [], []
    for batch in (1, 8):
        x = numpy_input(os.path.join(args.work, "img_%d.npy" % batch), (batch, 224, 224, 3))
        profile = kernel_profile(predict, x, 10 if batch == 1 else 3, args.rounds)
        total = sum(seconds for _, seconds in profile.values())
        by_family = {}
        for kernel, (family, seconds) in profile.items():
            f = by_family.setdefault(family, {"seconds": 0.0, "gflop": 0.0, "counted": True})
            f["seconds"] += seconds
            flops = family_flops(kernel, family, batch)
            if flops is None:
                f["counted"] = False
            else:
                f["gflop"] += flops / 1e9
        for family, f in sorted(by_family.items(), key=lambda item: -item[1]["seconds"]):
            results["families"].append({"batch": batch, "family": family, "ms": f["seconds"] * 1e3,
                                        "share": f["seconds"] / total,
                                        "gflop": f["gflop"] if f["counted"] else None})
        # The channel MLP of each stage: qdsl's one kernel (layer norm
        # included) against the peers' two products, each alone and warm
        # (the expanding one with GELU, the contracting one with the
        # residual), their times added.
        for stage, (c, hw) in enumerate(STAGES):
            # A block's MLP time: its one kernel, or (a build that does not
            # fuse it) its two.
            by_block, families = {}, set()
            for kernel, (fam, seconds) in profile.items():
                if fam in (MLP,) + POINTWISE and kernel.startswith("stages.%d." % stage):
                    block = kernel.split("/")[0]
                    by_block[block] = by_block.get(block, 0.0) + seconds
                    families.add(fam)
            blocks, families = list(by_block.values()), sorted(families)
            entry = {"batch": batch, "stage": stage, "families": families, "c": c,
                     "hidden": 4 * c, "hw": hw,
                     "gflop": 2 * 2.0 * batch * hw * hw * c * 4 * c / 1e9,
                     "qdsl_ms": statistics.median(blocks) * 1e3, "blocks": len(blocks)}
            if peers:
                best = {}
                for _ in range(args.rounds):
                    total = {}
                    for cin, cout, epilogue in ((c, 4 * c, "gelu"), (4 * c, c, "residual")):
                        command = [peers, "2", "10" if batch == 1 else "4", str(batch), str(hw),
                                   str(cin), str(cout), epilogue]
                        got = json.loads(run(command, env=dict(torch_env,
                                                               OMP_NUM_THREADS="2")).stdout)
                        for key in ("openblas_sgemm_ms", "onednn_conv1x1_ms"):
                            total[key] = total.get(key, 0) + got[key]
                    for key, ms in total.items():
                        best[key] = min(best.get(key, 1e9), ms)
                entry.update(best)
                results["gemm_peer_versions"] = {"openblas": got["openblas"],
                                                 "onednn": got["onednn"]}
            results["pointwise"].append(entry)

    # Halide's autoscheduler instead of qdsl's schedules, same kernels.
    manual = next(m for m in results["models"] if m["model"] == "QuadraNet36-T" and m["batch"] == 1)
    if not args.skip_autoschedule:
        auto = build_project(args.qdsl, args.target,
                             os.path.join(ROOT, "examples", "quadranet36_t.qd"), args.work,
                             "quadranet36_t_mullapudi",
                             ["--autoschedule=Mullapudi2016"])
        x = numpy_input(os.path.join(args.work, "img_1.npy"), (1, 224, 224, 3))
        auto_ms = min(time_predict(auto, x, 2) for _ in range(args.rounds))
        results["autoschedule"] = {"model": "QuadraNet36-T", "batch": 1,
                                   "mullapudi2016_ms": auto_ms, "qdsl_ms": manual["qdsl_ms"]}

    setting = results["pytorch_setting"]
    lines = ["qdsl's target: %s. Machine FMA peak at its vector width (2 threads, "
             "`qdsl machine --target %s`): %.0f GFLOP/s." % (args.target, args.target, peak), "",
             "PyTorch's setting: %s (%s), tcmalloc, 2 threads, channels-last; chosen as the "
             "fastest on QuadraNet36-T at batch 8: %s." % (
                 setting["chosen"], setting["blas_library"],
                 "; ".join("%s %.0f ms" % item
                           for item in setting["quadranet36_t_batch8_ms"].items())), "",
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
    ort = results["ort_setting"]
    lines += ["", "ONNX Runtime %s (npm onnxruntime-node, CPU), on `qdsl export --format onnx`'s "
              "file: graph optimisations all, 2 intra-op threads, execution mode %s, chosen as "
              "the faster on QuadraNet36-T at batch 8: %s." % (
                  ort["version"], ort["chosen"],
                  "; ".join("%s %.0f ms" % item for item in ort["quadranet36_t_batch8_ms"].items())),
              "", "Inference at 224×224 (images/s):", "",
              "| model | batch | qdsl | PyTorch | ONNX Runtime | qdsl vs PyTorch | qdsl vs ONNX Runtime |",
              "|---|---|---|---|---|---|---|"]
    for m in results["models"]:
        lines.append("| %s | %d | %.2f | %.2f | %.2f | %.2f× | %.2f× |" % (
            m["model"], m["batch"], m["batch"] / (m["qdsl_ms"] / 1e3),
            m["batch"] / (m["pytorch_ms"] / 1e3), m["batch"] / (m["ort_ms"] / 1e3),
            m["pytorch_ms"] / m["qdsl_ms"], m["ort_ms"] / m["qdsl_ms"]))
    lines += ["", "QuadraNet36-T by kernel family (each kernel's best call; ms per batch; "
              "GFLOP/s; % of FMA peak):", "",
              "| family | batch 1 | batch 8 (per image) |", "|---|---|---|"]
    for family in [f["family"] for f in results["families"] if f["batch"] == 1]:
        cells = []
        for batch in (1, 8):
            f = next((f for f in results["families"]
                      if f["batch"] == batch and f["family"] == family), None)
            if f is None:
                cells.append("–")
                continue
            cell = "%.1f ms (%.1f), %.0f%%" % (f["ms"], f["ms"] / batch, 100 * f["share"])
            if f["gflop"]:
                gf = f["gflop"] / (f["ms"] / 1e3)
                cell += "; %.0f GFLOP/s, %.0f%% of peak" % (gf, 100 * gf / peak)
            cells.append(cell)
        lines.append("| `%s` | %s |" % (family, " | ".join(cells)))
    lines += ["", "QuadraNet36-T's channel MLP by stage (qdsl: median over the stage's "
              "blocks of each kernel's best call, in the model, layer norm included; peers: "
              "the expanding product with GELU and the contracting one with the residual, "
              "each alone and warm, added; ms and % of FMA peak):", "",
              "| batch | qdsl kernels | C→4C→C, map | qdsl | OpenBLAS sgemm ×2 | "
              "oneDNN 1×1 conv ×2 |",
              "|---|---|---|---|---|---|"]
    for e in results["pointwise"]:
        def cell(ms):
            return "%.3f ms, %.0f%%" % (ms, 100 * e["gflop"] / (ms / 1e3) / peak)
        lines.append("| %d | %s | %d→%d→%d, %d² | %s | %s | %s |" % (
            e["batch"], ", ".join("`%s`" % f for f in e["families"]), e["c"], e["hidden"],
            e["c"], e["hw"], cell(e["qdsl_ms"]),
            cell(e["openblas_sgemm_ms"]) if "openblas_sgemm_ms" in e else "–",
            cell(e["onednn_conv1x1_ms"]) if "onednn_conv1x1_ms" in e else "–"))
    if "autoschedule" in results:
        auto_ms = results["autoschedule"]["mullapudi2016_ms"]
        lines += ["", "QuadraNet36-T, batch 1, with Halide's Mullapudi2016 autoscheduler instead "
                  "of qdsl's schedules: %.1f ms against %.1f ms (%.1f× slower)." % (
                      auto_ms, manual["qdsl_ms"], auto_ms / manual["qdsl_ms"])]
    write_outputs("\n".join(lines), results, args.markdown, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
