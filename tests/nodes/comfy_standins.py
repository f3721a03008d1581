"""Write the torchvision / torchaudio stand-in package for a local ComfyUI server (manual checks only).

Not part of pytest and never imported by the pack.  Machines here have no CPU build of
torchvision/torchaudio, and ComfyUI imports both at module level (comfy/sd.py, comfy_extras/
nodes_audio.py, comfy/audio_encoders/*).  This writes a tiny package tree that satisfies those
imports; put it on PYTHONPATH for the server only (tests/COMFYUI_LOCAL.md, section 3)::

    python tests/nodes/comfy_standins.py /work/comfyui_stubs
    PYTHONPATH=/work/comfyui_stubs python main.py --cpu ...

- torchvision, torchvision.transforms, torchvision.transforms.functional: every attribute is a
  placeholder that raises RuntimeError when called (imports only; ``transforms`` is a package
  because transformers imports ``torchvision.transforms.functional`` once it sees a torchvision).
- torchaudio.functional.resample: a working resampler on ``scipy.signal.resample_poly`` (close to,
  not identical with, torchaudio's sinc resampler): SaveAudio, audio previews, AudioEncoderEncode.
- torchaudio.transforms and everything else: placeholders that raise when called.

On a machine with real torchvision/torchaudio wheels do not use this.
"""

import argparse
import sys
from pathlib import Path

PLACEHOLDER = '''"""Stand-in written by Playmate's tests/nodes/comfy_standins.py: imports only, NOT the real {pkg}."""


class _Missing:
    def __init__(self, name):
        self._name = name

    def __call__(self, *args, **kwargs):
        raise RuntimeError("%s needs the real {pkg} (this is a stand-in package)" % self._name)

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Missing(self._name + "." + attr)

    def __mro_entries__(self, bases):
        return (object,)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing("{mod}." + name)
'''

VERSION = '__version__ = "0.0.0+standin"\n'
# import_module, not "from . import x": the module __getattr__ above would answer hasattr() first
SUBMODULES = """
import importlib as _importlib
for _sub in (%s):
    _importlib.import_module(__name__ + "." + _sub)
"""

RESAMPLE = '''

def resample(waveform, orig_freq, new_freq, *args, **kwargs):
    """torchaudio.functional.resample on scipy.signal.resample_poly (along the last axis)."""
    import math

    import numpy as np
    import torch
    from scipy.signal import resample_poly
    orig_freq, new_freq = int(orig_freq), int(new_freq)
    if orig_freq == new_freq:
        return waveform
    g = math.gcd(orig_freq, new_freq)
    x = waveform.detach().to("cpu", torch.float64).numpy()
    y = resample_poly(x, new_freq // g, orig_freq // g, axis=-1)
    return torch.from_numpy(np.ascontiguousarray(y)).to(device=waveform.device, dtype=waveform.dtype)
'''

FILES = {
    # submodules imported explicitly: ``from torchvision import transforms`` must not get a placeholder
    "torchvision/__init__.py": ("torchvision", "torchvision", VERSION + SUBMODULES % "\"transforms\","),
    "torchvision/transforms/__init__.py": ("torchvision", "torchvision.transforms", SUBMODULES % "\"functional\","),
    "torchvision/transforms/functional.py": ("torchvision", "torchvision.transforms.functional", ""),
    "torchaudio/__init__.py": ("torchaudio", "torchaudio", VERSION + SUBMODULES % "\"functional\", \"transforms\""),
    "torchaudio/functional.py": ("torchaudio", "torchaudio.functional", RESAMPLE),
    "torchaudio/transforms.py": ("torchaudio", "torchaudio.transforms", ""),
}


def write_standins(out):
    out = Path(out)
    for rel, (pkg, mod, extra) in FILES.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(PLACEHOLDER.format(pkg=pkg, mod=mod) + extra)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default="/work/comfyui_stubs", help="folder to write (default %(default)s)")
    args = parser.parse_args(argv)
    print("wrote stand-ins to %s" % write_standins(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
