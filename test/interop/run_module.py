"""Runs a module written by `qdsl export --format pytorch`:

    run_module.py MODEL.py TORCH.safetensors DIR BATCH...

loads the state dict (strictly: every name, nothing else), runs
DIR/xeB.npy for each batch B into DIR/torchB.npy, and writes the module's
state_dict back as DIR/state_dict.safetensors with the module's own writer.
A separate process, so that the module is imported as a user would.
"""
import importlib.util
import os
import sys

import numpy as np
import torch


def main():
    module_file, weights, work = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("exported", module_file)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)
    model = exported.create()
    model.load_state_dict(exported.load_safetensors(weights), strict=True)
    model.eval()
    torch.set_num_threads(2)
    with torch.no_grad():
        for batch in sys.argv[4:]:
            x = torch.from_numpy(np.load(os.path.join(work, "xe%s.npy" % batch)))
            y = model(x).numpy()
            np.save(os.path.join(work, "torch%s.npy" % batch), y)
    exported.save_safetensors(model.state_dict(), os.path.join(work, "state_dict.safetensors"))


if __name__ == "__main__":
    main()
