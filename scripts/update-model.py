#!/usr/bin/env python3
"""Regenerate fixtures/model/ from the botocore distribution installed on this machine.

The CodePipeline service model is Apache-2.0 data published by AWS in botocore. We keep the shapes, constraints and
operation list, and drop the documentation strings (they are large and we never serve them). Run it when botocore
gains a newer model:

    pip install --upgrade botocore && python3 scripts/update-model.py
"""
import gzip
import json
import os

import botocore

SRC = os.path.join(os.path.dirname(botocore.__file__), "data", "codepipeline", "2015-07-09")
DEST = os.path.join(os.path.dirname(__file__), "..", "fixtures", "model")

DROP = {"documentation", "documentationUrl", "examples"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def main():
    with gzip.open(os.path.join(SRC, "service-2.json.gz")) as f:
        model = json.load(f)
    with open(os.path.join(SRC, "paginators-1.json")) as f:
        paginators = json.load(f)
    out = strip(model)
    out["metadata"]["botocoreVersion"] = botocore.__version__
    os.makedirs(DEST, exist_ok=True)
    with open(os.path.join(DEST, "service-2.json"), "w") as f:
        json.dump(out, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(DEST, "paginators-1.json"), "w") as f:
        json.dump(paginators, f, indent=1)
        f.write("\n")
    print(f"wrote {DEST} from botocore {botocore.__version__}: "
          f"{len(out['operations'])} operations, {len(out['shapes'])} shapes")


if __name__ == "__main__":
    main()
