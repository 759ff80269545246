"""Which ONNX form of the quadratic convolution ONNX Runtime runs faster:
qdsl export's (three depthwise Convs, Mul, Add) or one grouped Conv with
3C outputs whose three interleaved thirds are taken by strided Slices.
Measured so that the exported form is ONNX Runtime's best, not an
assumption (docs/PERFORMANCE.md, "ONNX Runtime as a second peer").

    ort_graph_forms.py --qdsl build/bin/qdsl [--model examples/quadranet36_t.qd] [--rounds 2]

Both files get the same random weights; their outputs are checked to agree.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "bench", "ort_run.js")


def fuse_quadratic_convs(model):
    """Each run of three depthwise Convs reading one input → one Conv + 3 Slices."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    nodes, out, i, fused = list(graph.node), [], 0, 0
    while i < len(nodes):
        first = nodes[i]
        group = [a.i for a in first.attribute if a.name == "group"]
        triple = nodes[i:i + 3]
        if (first.op_type == "Conv" and group and group[0] > 1 and len(triple) == 3 and
                all(n.op_type == "Conv" and n.input[0] == first.input[0] for n in triple)):
            ws = [numpy_helper.to_array(initializers[n.input[1]]) for n in triple]
            bs = [numpy_helper.to_array(initializers[n.input[2]]) for n in triple]
            c = ws[0].shape[0]
            name = first.name + "_fused"
            graph.initializer.extend([
                numpy_helper.from_array(np.stack(ws, 1).reshape(3 * c, 1, *ws[0].shape[2:]),
                                        name + ".w"),
                numpy_helper.from_array(np.stack(bs, 1).reshape(3 * c), name + ".b")])
            conv = helper.make_node("Conv", [first.input[0], name + ".w", name + ".b"], [name],
                                    name=name)
            conv.attribute.extend(first.attribute)
            out.append(conv)
            for j, old in enumerate(triple):
                args = []
                for key, value in (("start", j), ("end", np.iinfo(np.int64).max), ("axis", 1),
                                   ("step", 3)):
                    graph.initializer.append(numpy_helper.from_array(
                        np.array([value], np.int64), "%s.%s%d" % (name, key, j)))
                    args.append("%s.%s%d" % (name, key, j))
                out.append(helper.make_node("Slice", [name] + args, [old.output[0]],
                                            name=old.output[0]))
            used = {n.input[k] for n in triple for k in (1, 2)}
            keep = [t for t in graph.initializer if t.name not in used]
            del graph.initializer[:]
            graph.initializer.extend(keep)
            initializers = {t.name: t for t in graph.initializer}
            fused += 1
            i += 3
            continue
        out.append(first)
        i += 1
    del graph.node[:]
    graph.node.extend(out)
    return fused


def best_ms(model_file, x, output, repeat):
    result = subprocess.run(["node", RUNNER, "--model", model_file, "--input", x, "--output",
                             output, "--repeat", str(repeat)], capture_output=True, text=True,
                            check=True)
    return 1e3 * min(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--qdsl", required=True)
    parser.add_argument("--model", default=os.path.join(ROOT, "examples", "quadranet36_t.qd"))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ort-forms-")
    weights = os.path.join(work, "w.safetensors")
    exported = os.path.join(work, "exported.onnx")
    fused_file = os.path.join(work, "fused.onnx")
    subprocess.run([args.qdsl, "weights", "init", args.model, "--random-std", "0.02", "-o",
                    weights], check=True)
    subprocess.run([args.qdsl, "export", args.model, "--format", "onnx", "--weights", weights,
                    "-o", exported], check=True)
    model = onnx.load(exported)
    count = fuse_quadratic_convs(model)
    onnx.checker.check_model(model)
    onnx.save(model, fused_file)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    best = {}
    for batch in (1, 8):
        x = os.path.join(work, "x%d.npy" % batch)
        np.save(x, np.random.default_rng(batch).standard_normal([batch] + shape, np.float32))
        for _ in range(args.rounds):
            for form, path in (("exported", exported), ("fused", fused_file)):
                ms = best_ms(path, x, os.path.join(work, "%s%d.npy" % (form, batch)),
                             3 if batch == 8 else 5)
                best[form, batch] = min(best.get((form, batch), 1e9), ms)
        a, b = (np.load(os.path.join(work, "%s%d.npy" % (f, batch))) for f in ("exported", "fused"))
        if np.abs(a - b).max() > 1e-5 * np.abs(a).max():
            raise SystemExit("the two forms disagree at batch %d" % batch)
    print("%s: %d quadratic convolutions; ONNX Runtime, best ms per batch" %
          (os.path.basename(args.model), count))
    print("| batch | 3 depthwise Convs + Mul + Add (exported) | 1 grouped Conv (3C) + 3 Slices |")
    print("|---|---|---|")
    for batch in (1, 8):
        print("| %d | %.1f | %.1f |" % (batch, best["exported", batch], best["fused", batch]))


if __name__ == "__main__":
    sys.exit(main())
