"""The data loader of `train --dataset folder` against the step it feeds:
QuadraNet36-T at 224x224, batch 16, on this machine.

    loader_benchmark.py --qdsl build/bin/qdsl [--images 320] [--target T]

Makes a folder of JPEG photographs-to-be (smooth random scenes, 500x375
and 375x500 like most of ImageNet, quality 90) in two classes, then
measures in the same run:
  - the loader alone (`train --benchmark-loader`): decode, RandomResizedCrop,
    flip, resample and normalise, with 1 and 2 loader threads;
  - the step alone (`train --benchmark`: forward, backward, AdamW);
  - a real run on the folder (`train --dataset folder --profile`): the
    seconds the steps waited for data.
The loader must deliver images faster than the step consumes them.
"""
import argparse
import json
import os
import re
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import run, widest_cpu_target  # noqa: E402
from training_benchmarks import build_training  # noqa: E402

BATCH = 16


def make_folder(root, count):
    from PIL import Image
    rng = np.random.default_rng(0)
    made = 0
    for split, n in (("train", count), ("val", max(16, count // 10))):
        for i in range(n):
            label = i % 2
            folder = os.path.join(root, split, ("cats", "dogs")[label])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "%05d.jpg" % i)
            if os.path.exists(path):
                continue
            size = (500, 375) if i % 3 else (375, 500)
            coarse = rng.integers(0, 255, (size[1] // 25, size[0] // 25, 3), dtype=np.uint8)
            image = Image.fromarray(coarse).resize(size, Image.BICUBIC)
            noise = rng.integers(0, 40, (size[1], size[0], 3), dtype=np.uint8)
            pixels = np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(path, quality=90)
            made += 1
    return made


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--work", default=os.path.join(ROOT, "build", "bench-loader"))
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--target")
    parser.add_argument("--json")
    args = parser.parse_args()
    qdsl = os.path.abspath(args.qdsl)
    target = args.target or widest_cpu_target(qdsl)
    folder = os.path.join(args.work, "images")
    make_folder(folder, args.images)
    sizes = [os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs]
    train = build_training(qdsl, target, os.path.join(ROOT, "examples", "quadranet36_t.qd"),
                           args.work, "q36")
    data = ["--dataset", "folder", "--data", folder, "--batch", str(BATCH), "--threads", "2"]
    results = {"target": target, "images": len(sizes), "mean_jpeg_kb": np.mean(sizes) / 1024}
    for threads in (1, 2):
        out = run([train] + data + ["--benchmark-loader", "--loader-threads", str(threads),
                                    "--steps", "12"]).stdout
        results["loader_%d_thread" % threads] = json.loads(out.strip().splitlines()[-1])["loader"]
    step = json.loads(run([train, "--benchmark", "--batch", str(BATCH), "--steps", "2",
                           "--threads", "2"]).stdout.strip().splitlines()[-1])
    results["step"] = step
    # A real run: 6 steps of the folder with the loader ahead of them.
    out = run([train] + data + ["--steps", "6", "--profile", "--loader-threads", "1",
                                "--out", os.path.join(args.work, "run"), "--overwrite"]).stdout
    waited = re.search(r"data: waiting for the loader\)\s+([0-9.]+)", out)
    results["run_profile"] = [l for l in out.splitlines() if "data" in l or "total" in l]
    results["run_data_wait_s"] = float(waited.group(1)) if waited else None
    step_s = step.get("step_s") or step.get("best_step_s")
    print("target %s, %d JPEGs of %.0f KB on average, batch %d" %
          (target, len(sizes), results["mean_jpeg_kb"], BATCH))
    print("| what | images/s |\n|---|---|")
    for threads in (1, 2):
        print("| loader alone, %d thread%s | %.1f |" % (
            threads, "s" if threads > 1 else "",
            results["loader_%d_thread" % threads]["images_per_second"]))
    if step_s:
        print("| training step (QuadraNet36-T, 2 threads) | %.1f |" % (BATCH / step_s))
    print("data wait in a 6-step run: %s s" % results["run_data_wait_s"])
    for line in results["run_profile"]:
        print("  " + line)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
