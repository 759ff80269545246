"""The GPU check of qdsl's cuda target, run by bench/gpu/run.sh on a GPU
machine from what bench/gpu/prepare.py wrote: builds every CUDA project, runs
the tests (predict against the reference executor's outputs at fp32, tf32 and
bf16; the training step's gradients against the reference's; Fashion-MNIST
trained three epochs; compute-sanitizer memcheck and racecheck on predict and
the training step), then the benchmarks next to
PyTorch in the same run, and the latency model's error on ten architectures.
Prints a table and writes OUT/gpu_results.json.

    python3 bench/gpu/gpu_checks.py --work bench/gpu/work --out OUT [--budget 420]
    python3 bench/gpu/gpu_checks.py --work ... --out ... --dry-run

--dry-run (no GPU) builds the projects with -DQDSL_CUDA_EMULATE=ON and runs
the fp32 tests on the CPU emulation: the plumbing, checked where it is
written. Benchmarks that would not fit in --budget seconds are skipped and
listed as such.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOLERANCE = {"fp32": 1e-4, "tf32": 2e-2, "bf16": 2e-2}
BENCH_BATCH = 128
# The qdwconv shapes of the issue: (kernel name in QuadraNet36-T, N, C, H).
QDWCONV = [("stages.0.0/ln_qdwconv_scale_residual", 128, 64, 56),
           ("stages.2.0/ln_qdwconv_scale_residual", 128, 256, 14)]


class Run:
    def __init__(self, args):
        self.args = args
        self.start = time.time()
        self.results = {"tests": [], "benchmarks": {}, "skipped": [], "architectures": []}
        self.failures = []

    def left(self):
        return self.args.budget - (time.time() - self.start)

    def cmd(self, cmd, env=None, check=True, timeout=None):
        result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError("failed (%d): %s\n%s%s" % (result.returncode, " ".join(cmd),
                                                          result.stdout[-2000:],
                                                          result.stderr[-2000:]))
        return result


def zlib_library():
    """The system's zlib (its -dev package may be missing: the headers travel)."""
    for pattern in ("/usr/lib/x86_64-linux-gnu/libz.so*", "/lib/x86_64-linux-gnu/libz.so*",
                    "/usr/lib64/libz.so*", "/usr/lib/libz.so*"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def build(run, name):
    work = os.path.join(run.args.work, name)
    # The emulation builds elsewhere: a dry run must leave nothing the GPU
    # run would pick up (or carry).
    build_dir = (os.path.join(run.args.dry_run_builds, name) if run.args.dry_run
                 else os.path.join(work, "build"))
    include = os.path.join(run.args.work, "third_party", "include")
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_INCLUDE_PATH=" + include]
    if name.startswith("train_") and zlib_library():
        flags += ["-DZLIB_INCLUDE_DIR=" + include, "-DZLIB_LIBRARY=" + zlib_library()]
    flags.append("-DQDSL_CUDA_EMULATE=" + ("ON" if run.args.dry_run else "OFF"))
    if not os.path.exists(os.path.join(build_dir, "build.ninja")):
        run.cmd(["cmake", "-S", work, "-B", build_dir, "-G", "Ninja"] + flags)
    run.cmd(["cmake", "--build", build_dir, "-j", str(run.args.jobs_per_build)])
    return os.path.join(build_dir, "train" if name.startswith("train_") else "predict")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    size = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + size])
    tensors = {key: np.frombuffer(data[8 + size + e["data_offsets"][0]:8 + size +
                                       e["data_offsets"][1]], "<f4").reshape(e["shape"])
               for key, e in header.items() if key != "__metadata__"}
    return tensors, header.get("__metadata__", {})


def training(run, manifest, programs):
    """The Fashion-MNIST training step against the reference's gradients
    (and under compute-sanitizer), then a few epochs on the GPU."""
    name = "train_fashion_mnist"
    case = manifest["train"][name]
    work = os.path.join(run.args.work, name)
    step = [programs[name], "--input", os.path.join(work, "x.npy"), "--labels",
            os.path.join(work, "labels.npy"), "--weights", os.path.join(work, case["weights"])]
    got_path = os.path.join(work, "g.safetensors")
    run.cmd(step + ["--gradients", got_path])
    got, got_meta = read_safetensors(got_path)
    want, want_meta = read_safetensors(os.path.join(work, "g_ref.safetensors"))
    worst = max(normwise(got[k], want[k]) for k in want) if got.keys() == want.keys() else 1e30
    loss = abs(float(got_meta["qdsl.loss"]) - float(want_meta["qdsl.loss"])) / abs(
        float(want_meta["qdsl.loss"]))
    ok = max(worst, loss) <= TOLERANCE["fp32"]
    run.results["tests"].append({"test": "train step fashion_mnist fp32 (gradients)",
                                 "error": max(worst, loss), "tolerance": TOLERANCE["fp32"],
                                 "ok": ok})
    if not ok:
        run.failures.append("training step: worst gradient error %.2e, loss %.2e" % (worst, loss))
    sanitizer = shutil.which("compute-sanitizer")
    if run.args.dry_run or not sanitizer:
        run.results["skipped"].append("compute-sanitizer on the training step" +
                                      (" (dry run)" if run.args.dry_run else ": not installed"))
    else:
        for tool in ("memcheck", "racecheck"):
            result = run.cmd([sanitizer, "--tool", tool, "--error-exitcode", "9"] + step +
                             ["--gradients", os.path.join(work, "g_sanitized.safetensors")],
                             check=False)
            ok, summary = sanitizer_clean(tool, result)
            run.results["tests"].append({"test": "compute-sanitizer %s (training step)" % tool,
                                         "ok": ok, "summary": summary})
            if not ok:
                run.failures.append("compute-sanitizer %s on the training step:\n%s" % (
                    tool, (result.stdout + result.stderr)[-2000:]))
    if run.args.dry_run:
        run.results["skipped"].append("Fashion-MNIST training run (dry run)")
        return
    out = os.path.join(work, "run")
    start = time.time()
    result = run.cmd([programs[name], "--data", os.path.join(run.args.work, "data"), "--epochs",
                      "3", "--batch", "128", "--lr", "4e-3", "--out", out, "--overwrite"])
    top1 = re.findall(r"test top-1 ([0-9.]+)%", result.stdout + result.stderr)
    accuracy = float(top1[-1]) if top1 else 0.0
    ok = accuracy >= 85.0
    run.results["tests"].append({"test": "Fashion-MNIST 3 epochs on the GPU: test top-1 %.2f%% "
                                         "(>= 85%%) in %.0f s" % (accuracy, time.time() - start),
                                 "ok": ok})
    if not ok:
        run.failures.append("Fashion-MNIST reached %.2f%% top-1" % accuracy)


def normwise(y, ref):
    return float(np.abs(y - ref).max()) / max(float(np.abs(ref).max()), 1e-30)


def predict_args(work, case):
    if case["weights"]:
        return ["--weights", os.path.join(work, case["weights"])]
    return ["--seed", str(case["seed"])]


def best_ms(stderr):
    found = re.search(r"best ([0-9.]+) ms", stderr)
    if not found:
        raise RuntimeError("predict printed no time:\n" + stderr[-1000:])
    return float(found.group(1))


def tests(run, manifest, programs):
    precisions = ["fp32"] if run.args.dry_run else ["fp32", "tf32", "bf16"]
    for name, case in manifest["cases"].items():
        work = os.path.join(run.args.work, name)
        ref = np.load(os.path.join(work, "ref.npy"))
        for precision in precisions:
            out = os.path.join(work, "y_%s.npy" % precision)
            run.cmd([programs[name], "--input", os.path.join(work, "x.npy"), "--output", out,
                     "--precision", precision] + predict_args(work, case))
            error = normwise(np.load(out), ref)
            ok = bool(np.isfinite(np.load(out)).all()) and error <= TOLERANCE[precision]
            run.results["tests"].append({"test": "predict %s %s" % (name, precision),
                                         "error": error, "tolerance": TOLERANCE[precision],
                                         "ok": ok})
            if not ok:
                run.failures.append("%s %s: error %.2e" % (name, precision, error))
    sanitizer = shutil.which("compute-sanitizer")
    if run.args.dry_run or not sanitizer:
        run.results["skipped"].append("compute-sanitizer" + (" (dry run)" if run.args.dry_run
                                                            else ": not installed"))
        return
    work = os.path.join(run.args.work, "fashion_mnist")
    case = manifest["cases"]["fashion_mnist"]
    for tool in ("memcheck", "racecheck"):
        result = run.cmd([sanitizer, "--tool", tool, "--error-exitcode", "9", programs["fashion_mnist"],
                          "--input", os.path.join(work, "x.npy"), "--output",
                          os.path.join(work, "y_sanitized.npy")] + predict_args(work, case),
                         check=False)
        ok, summary = sanitizer_clean(tool, result)
        run.results["tests"].append({"test": "compute-sanitizer %s (fashion_mnist predict)" % tool,
                                     "ok": ok, "summary": summary})
        if not ok:
            run.failures.append("compute-sanitizer %s:\n%s" % (tool, (result.stdout + result.stderr)[-2000:]))


def sanitizer_clean(tool, result):
    """Whether compute-sanitizer's run was clean, and its summary line:
    memcheck prints "ERROR SUMMARY: N errors", racecheck "RACECHECK SUMMARY:
    N hazards displayed (E errors, W warnings)"."""
    text = result.stdout + result.stderr
    if tool == "racecheck":
        found = re.search(r"RACECHECK SUMMARY: (\d+) hazards? displayed \((\d+) errors?, "
                          r"(\d+) warnings?\)", text)
        clean = found is not None and all(g == "0" for g in found.groups())
    else:
        found = re.search(r"ERROR SUMMARY: (\d+) errors?", text)
        clean = found is not None and found.group(1) == "0"
    return result.returncode == 0 and clean, found.group(0) if found else text[-300:]


def pytorch(run, *args):
    result = run.cmd([sys.executable, os.path.join(HERE, "pytorch_gpu.py")] + list(args))
    return json.loads(result.stdout.strip().splitlines()[-1])


def benchmarks(run, manifest, programs):
    bench = run.results["benchmarks"]
    bench["bandwidth"] = pytorch(run, "bandwidth")
    # qdsl: QuadraNet36-T at batch 128, weights from --seed 1.
    work = os.path.join(run.args.work, "quadranet36_t")
    x = os.path.join(work, "x%d.npy" % BENCH_BATCH)
    np.save(x, np.random.default_rng(0).standard_normal((BENCH_BATCH, 224, 224, 3),
                                                         dtype=np.float32))
    program = programs["quadranet36_t"]
    qdsl = {}
    for precision in ("fp32", "tf32", "bf16"):
        result = run.cmd([program, "--seed", "1", "--input", x, "--output",
                          os.path.join(work, "y_bench.npy"), "--precision", precision,
                          "--repeat", "20", "--warmup", "3"])
        ms = best_ms(result.stderr)
        qdsl[precision] = {"best_ms": ms, "images_per_s": BENCH_BATCH / ms * 1e3}
    profile = os.path.join(work, "profile.json")
    run.cmd([program, "--seed", "1", "--input", x, "--output", os.path.join(work, "y_bench.npy"),
             "--repeat", "3", "--profile-json", profile])
    kernels = {k["kernel"]: min(k["seconds"]) for k in json.load(open(profile))["kernels"]}
    bench["qdsl_inference"] = qdsl
    peak = bench["bandwidth"]["gb_per_s"]
    bench["qdwconv"] = []
    for kernel, n, c, h in QDWCONV:
        seconds = kernels.get(kernel)
        entry = {"kernel": kernel, "shape": [n, c, h], "qdsl_forward_ms": None}
        if seconds:
            moved = 2 * n * h * h * c * 4  # x read once, y written once
            entry.update(qdsl_forward_ms=seconds * 1e3,
                         qdsl_percent_of_bandwidth=100 * moved / seconds / 1e9 / peak)
        entry["pytorch"] = pytorch(run, "qdwconv", "--shape", str(n), str(c), str(h))
        bench["qdwconv"].append(entry)
    # PyTorch on the same architecture, and timm's models as context.
    peers = []
    for precision in ("fp32", "tf32", "bf16"):
        peers.append(pytorch(run, "infer", "--model", "quadranet36_t", "--batch",
                             str(BENCH_BATCH), "--precision", precision))
    for mode in ("default", "max-autotune"):
        for precision in ("fp32", "tf32", "bf16"):
            if run.left() < (240 if mode == "max-autotune" else 120):
                run.results["skipped"].append("torch.compile %s %s (budget)" % (mode, precision))
                continue
            try:
                peers.append(pytorch(run, "infer", "--model", "quadranet36_t", "--batch",
                                     str(BENCH_BATCH), "--precision", precision, "--mode", mode))
            except RuntimeError as error:
                run.results["skipped"].append("torch.compile %s %s: %s" % (mode, precision,
                                                                           str(error)[:300]))
    for timm_model in ("convnext_tiny", "swin_tiny_patch4_window7_224"):
        for precision in ("fp32", "tf32", "bf16"):
            if run.left() < 60:
                run.results["skipped"].append("timm %s %s (budget)" % (timm_model, precision))
                continue
            peers.append(pytorch(run, "infer", "--timm", timm_model, "--batch",
                                 str(BENCH_BATCH), "--precision", precision))
    bench["pytorch_inference"] = peers
    bench["pytorch_training"] = pytorch(run, "train", "--model", "quadranet36_t", "--batch",
                                        str(BENCH_BATCH), "--precision", "bf16", "--repeat", "5")
    if run.left() > 90:
        result = run.cmd([programs["train_quadranet36_t"], "--benchmark", "--batch",
                          str(BENCH_BATCH), "--steps", "3", "--precision", "bf16"], timeout=300)
        bench["qdsl_training"] = json.loads(result.stdout.strip().splitlines()[-1])
    else:
        run.results["skipped"].append("qdsl training step benchmark (budget)")


def latency_model(run, manifest, programs):
    batch = manifest["latency_batch"]
    for arch in manifest["architectures"]:
        work = os.path.join(run.args.work, arch["name"])
        x = os.path.join(work, "x.npy")
        np.save(x, np.random.default_rng(1).standard_normal((batch, 28, 28, 1),
                                                             dtype=np.float32))
        result = run.cmd([programs[arch["name"]], "--seed", "1", "--input", x, "--output",
                          os.path.join(work, "y.npy"), "--repeat", "20", "--warmup", "3"])
        measured = best_ms(result.stderr)
        run.results["architectures"].append(dict(arch, measured_ms=measured,
                                                 error=arch["predicted_ms"] / measured - 1))


def table(run):
    lines = ["test                                              result"]
    for t in run.results["tests"]:
        lines.append("%-49s %s%s" % (t["test"], "ok" if t["ok"] else "FAILED",
                                     "  (error %.2e, tolerance %.0e)" % (t["error"], t["tolerance"])
                                     if "error" in t else ""))
    bench = run.results["benchmarks"]
    if "qdsl_inference" in bench:
        lines.append("\nQuadraNet36-T inference, batch %d, 224x224 (images/s)" % BENCH_BATCH)
        lines.append("%-40s %10s %10s %10s" % ("", "fp32", "tf32", "bf16"))
        lines.append("%-40s %10.0f %10.0f %10.0f" % ("qdsl cuda", *[
            bench["qdsl_inference"][p]["images_per_s"] for p in ("fp32", "tf32", "bf16")]))
        rows = {}
        for peer in bench["pytorch_inference"]:
            rows.setdefault("%s %s" % (peer["model"], peer["mode"]), {})[peer["precision"]] = \
                peer["images_per_s"]
        for row, values in rows.items():
            lines.append("%-40s %10s %10s %10s" % (("PyTorch " + row)[:40], *[
                "%.0f" % values[p] if p in values else "-" for p in ("fp32", "tf32", "bf16")]))
        for q in bench["qdwconv"]:
            lines.append("qdwconv k7 N%d C%d %d^2: qdsl fused forward %s ms (%s of bandwidth); "
                         "PyTorch forward %.3f ms, forward+backward %.3f ms" % (
                             q["shape"][0], q["shape"][1], q["shape"][2],
                             "%.3f" % q["qdsl_forward_ms"] if q["qdsl_forward_ms"] else "-",
                             "%.0f%%" % q["qdsl_percent_of_bandwidth"]
                             if q["qdsl_forward_ms"] else "-",
                             q["pytorch"]["forward_ms"], q["pytorch"]["forward_backward_ms"]))
        t = bench["pytorch_training"]
        lines.append("PyTorch training step bf16 batch %d: %.1f ms, peak %.0f MiB" % (
            t["batch"], t["best_ms"], t["peak_memory_mib"]))
        if "qdsl_training" in bench:
            lines.append("qdsl training step bf16 batch %d: %s" % (
                BENCH_BATCH, json.dumps(bench["qdsl_training"])))
        lines.append("memory bandwidth (1 GiB copy): %.0f GB/s on %s" % (
            bench["bandwidth"]["gb_per_s"], bench["bandwidth"]["device"]))
    if run.results["architectures"]:
        lines.append("\nlatency model (%s, uncalibrated) on %d architectures of fmnist_space" %
                     ("h100", len(run.results["architectures"])))
        for a in run.results["architectures"]:
            lines.append("  %-8s %-8s predicted %8.3f ms  measured %8.3f ms  error %+.0f%%" % (
                a["name"], a["choices"], a["predicted_ms"], a["measured_ms"], 100 * a["error"]))
    for s in run.results["skipped"]:
        lines.append("skipped: " + s)
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(HERE, "work"))
    parser.add_argument("--out", required=True)
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds for the whole check (benchmarks are skipped to fit)")
    parser.add_argument("--jobs-per-build", type=int, default=4)
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--dry-run-builds", default="/tmp/qdsl-gpu-dry-run",
                        help="where --dry-run builds the projects (outside --work)")
    args = parser.parse_args()
    run = Run(args)
    manifest = json.load(open(os.path.join(args.work, "manifest.json")))
    names = (list(manifest["cases"]) + list(manifest["train"]) +
             [a["name"] for a in manifest["architectures"]])
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        programs = dict(zip(names, pool.map(lambda n: build(run, n), names)))
    run.results["build_s"] = time.time() - run.start
    tests(run, manifest, programs)
    training(run, manifest, programs)
    if args.dry_run:
        run.results["skipped"].append("benchmarks and the latency model (dry run: no GPU)")
    else:
        benchmarks(run, manifest, programs)
        latency_model(run, manifest, programs)
    run.results["seconds"] = time.time() - run.start
    run.results["failures"] = run.failures
    os.makedirs(args.out, exist_ok=True)
    text = table(run)
    print(text)
    with open(os.path.join(args.out, "gpu_results.json"), "w") as f:
        json.dump(run.results, f, indent=1)
    with open(os.path.join(args.out, "gpu_results.txt"), "w") as f:
        f.write(text + "\n")
    if run.failures:
        print("FAILED:\n" + "\n".join(run.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
