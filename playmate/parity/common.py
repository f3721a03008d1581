"""What the parity checks and the synthetic-model writers share: where the golden data is, and
reading its manifest and weight rule.

One rule for the golden folder of a check: its ``--cases`` argument, else
``$PLAYMATE_SHARED/golden/<kind>``, else ``../shared/golden/<kind>`` beside the repository.
"""

import hashlib
import importlib.util
import json
import math
import os
from pathlib import Path

import torch

from ..errors import PlaymateError

REPO = Path(__file__).resolve().parents[2]


def shared_dir():
    """The shared data folder: $PLAYMATE_SHARED, else ../shared beside the repository."""
    env = os.environ.get("PLAYMATE_SHARED")
    return Path(env) if env else REPO.parent / "shared"


def golden_dir(kind, cases=None):
    """The golden cases of ``kind`` ("liveportrait", "joyvasa"): ``cases`` when given, else
    shared_dir()/golden/kind."""
    return Path(cases) if cases else shared_dir() / "golden" / kind


def load_golden_weights(path):
    """Import golden_weights.py (the synthetic-weight rule beside the cases; not a package) from its path."""
    path = Path(path)
    if not path.is_file():
        raise PlaymateError("Weight generator '%s' not found (pass --weights-generator FILE)." % path)
    name = "golden_weights_%s" % hashlib.md5(str(path).encode()).hexdigest()[:8]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_manifest(path):
    path = Path(path)
    if not path.is_file():
        raise PlaymateError("Manifest '%s' not found (pass --manifest FILE)." % path)
    return json.loads(path.read_text())


def stored_draws(draws):
    """draw(shape) serving ``draws`` (an iterable of arrays, e.g. a golden case's noise) in order, each
    reshaped to the asked shape -- what parity checks pass where generation uses :func:`seeded_draws`."""
    it = iter(draws)

    def draw(shape):
        try:
            z = torch.as_tensor(next(it), dtype=torch.float32)
        except StopIteration:
            raise ValueError("noise: ran out of draws (the clip needs more windows or steps).") from None
        if z.numel() != math.prod(shape):
            raise ValueError("noise: a draw has %d values, expected shape %s." % (z.numel(), tuple(shape)))
        return z.reshape(shape)
    return draw


def report(rows, format_table, format_summary, label):
    """Print the table, the summary and one verdict line ``<label>: N arrays compared, all ok`` (or
    ``K FAILED``); the exit status: 1 when any row failed."""
    print(format_table(rows))
    print(format_summary(rows))
    failed = [r for r in rows if not r.ok]
    print("%s: %d arrays compared, %s" % (label, len(rows), "all ok" if not failed else "%d FAILED" % len(failed)))
    return 1 if failed else 0
