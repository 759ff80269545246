"""Training agrees across the border: the generated `train` and PyTorch
training the module of `qdsl export --format pytorch`, from the same
weights on the same examples, reach the same loss step by step; and
`train --dataset folder` learns from a folder of images made here.

    check_training.py --qdsl build/bin/qdsl --root REPO --work DIR

The data are NumPy arrays (train --dataset npy, int64 labels), one batch
of 32 examples a step, normalised by --mean 0 --std 1 (the identity), so
that both sides see the same tensors. Both use AdamW (lr 1e-3 constant:
--min-lr equal to --lr, no warm-up; weight decay 0.05 on weights of two
or more dimensions, as train does), clipping at global norm 5. The losses
of 8 steps must agree within 1e-5 relative.

The folder: two classes of JPEG and PNG images of many sizes (dark and
bright scenes, noisy), train/ and val/; 3 epochs must reach 90% on val/,
and so must the model `qdsl search --dataset folder` derives from the tiny
test space and retrains on it.
"""
import argparse
import importlib.util
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "codegen"))
from check_codegen import run  # noqa: E402

TOLERANCE = 1e-5
STEPS = 8
BATCH = 32


def pytorch_losses(module_file, weights, x, y, lr, weight_decay, clip):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(2)
    spec = importlib.util.spec_from_file_location("exported", module_file)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)
    model = exported.create()
    model.load_state_dict(exported.load_safetensors(weights), strict=True)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": rest, "weight_decay": 0.0}],
                                  lr=lr, betas=(0.9, 0.999), eps=1e-8)
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(y)
    losses = []
    for _ in range(STEPS):
        optimiser.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimiser.step()
        losses.append(float(loss))
    return losses


def make_folder(root):
    from PIL import Image
    rng = np.random.default_rng(3)
    for split, n in (("train", 48), ("val", 16)):
        for label, name in enumerate(("dark", "bright")):
            folder = os.path.join(root, split, name)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                size = (int(rng.integers(20, 90)), int(rng.integers(20, 90)))
                base = 70 + 110 * label
                pixels = np.clip(rng.normal(base, 35, (size[1], size[0], 3)), 0, 255)
                image = Image.fromarray(pixels.astype(np.uint8))
                if i % 2:
                    image.save(os.path.join(folder, "%d.jpg" % i), quality=85)
                else:
                    image.save(os.path.join(folder, "%d.png" % i))


def check_folder(train, work):
    folder = os.path.join(work, "images")
    make_folder(folder)
    out = os.path.join(work, "folder-run")
    result = run([train, "--dataset", "folder", "--data", folder, "--flip", "--epochs", "3",
                  "--batch", "8", "--threads", "2", "--loader-threads", "2", "--out", out,
                  "--overwrite"])
    print("\n".join(l for l in result.stdout.splitlines() if l.startswith(("train:", "epoch"))))
    epochs = [r for r in map(json.loads, open(os.path.join(out, "metrics.jsonl")))
              if r.get("event") == "epoch"]
    top1 = epochs[-1]["test_top1"]
    if top1 < 0.9:
        raise SystemExit("train --dataset folder reached %.1f%% on val/, expected 90%%" %
                         (100 * top1))
    print("train --dataset folder: %.1f%% on val/ after 3 epochs" % (100 * top1))


def check_search_on_folder(args, folder):
    """qdsl search --dataset folder: the tiny test space searched, derived and
    retrained on the same folder, end to end."""
    out = os.path.join(args.work, "search")
    run([args.qdsl, "search", os.path.join(args.root, "test/codegen/tiny_search_space.qd"),
         "--device", os.path.join(args.root, "test/tools/Inputs/test-profile.json"),
         "--dataset", "folder", "--data", folder, "-o", out, "--overwrite", "--epochs", "2",
         "--warmup-epochs", "1", "--retrain-epochs", "2", "--batch", "8", "--validation", "16",
         "--rank-samples", "0", "-j", str(args.jobs)])
    with open(os.path.join(out, "report.json")) as f:
        derived = json.load(f)["derived"]
    with open(os.path.join(out, "search", "search.json")) as f:
        dataset = json.load(f)["settings"]["dataset"]
    if dataset != "folder" or derived["test_accuracy"] < 0.9:
        raise SystemExit("qdsl search --dataset folder: the search read '%s', the derived model "
                         "reached %.1f%%" % (dataset, 100 * derived["test_accuracy"]))
    print("qdsl search --dataset folder: derived %s, %.1f%% on val/" %
          (derived["choices"], 100 * derived["test_accuracy"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    qd = os.path.join(args.root, "examples", "fashion_mnist.qd")
    os.makedirs(args.work, exist_ok=True)
    project = os.path.join(args.work, "project")
    run([args.qdsl, "compile", qd, "--train", "--target", "x86-64-avx2", "-o", project])
    run([args.qdsl, "build", project, "-j", str(args.jobs)])

    rng = np.random.default_rng(7)
    x = rng.standard_normal((BATCH, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    files = {name: os.path.join(args.work, name + ".npy") for name in ("x", "y")}
    np.save(files["x"], x)
    np.save(files["y"], y)
    lr, weight_decay, clip = 1e-3, 0.05, 5.0
    out = os.path.join(args.work, "run")
    run([os.path.join(project, "build", "train"), "--dataset", "npy",
         "--train-images", files["x"], "--train-labels", files["y"],
         "--test-images", files["x"], "--test-labels", files["y"],
         "--batch", str(BATCH), "--epochs", str(STEPS), "--lr", str(lr), "--min-lr", str(lr),
         "--warmup-steps", "0", "--weight-decay", str(weight_decay), "--clip", str(clip),
         "--mean", "0", "--std", "1", "--log-every", "1", "--seed", "0", "--threads", "2",
         "--out", out, "--overwrite"])
    ours = [r["loss"] for r in map(json.loads, open(os.path.join(out, "metrics.jsonl")))
            if r.get("event") == "step"]
    if len(ours) != STEPS:
        raise SystemExit("train logged %d steps, expected %d" % (len(ours), STEPS))

    # The same initial weights: train's --seed 0 is qdsl weights init --seed 0.
    weights = os.path.join(args.work, "w.safetensors")
    torch_weights = os.path.join(args.work, "torch.safetensors")
    module_file = os.path.join(args.work, "model.py")
    run([args.qdsl, "weights", "init", qd, "--seed", "0", "-o", weights])
    run([args.qdsl, "weights", "export", qd, weights, "-o", torch_weights])
    run([args.qdsl, "export", qd, "--format", "pytorch", "-o", module_file])
    theirs = pytorch_losses(module_file, torch_weights, x, y, lr, weight_decay, clip)
    worst = 0.0
    for step, (a, b) in enumerate(zip(ours, theirs)):
        error = abs(a - b) / abs(b)
        worst = max(worst, error)
        print("step %d  train %.7f  pytorch %.7f  relative %.1e" % (step + 1, a, b, error))
    if worst > TOLERANCE:
        raise SystemExit("the losses differ by %.2e relative (> %.0e)" % (worst, TOLERANCE))
    print("train and PyTorch on the exported module agree over %d steps (worst %.1e)" %
          (STEPS, worst))
    check_folder(os.path.join(project, "build", "train"), args.work)
    check_search_on_folder(args, os.path.join(args.work, "images"))


if __name__ == "__main__":
    main()
