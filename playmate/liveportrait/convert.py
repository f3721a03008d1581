"""Convert official LivePortrait ``.pth`` files to the safetensors layout.

    python -m playmate.liveportrait.convert SRC_FOLDER DST_FOLDER

SRC_FOLDER holds the official files (flat or in the official ``liveportrait/base_models`` tree);
DST_FOLDER receives ``<stem>.safetensors`` for the five files, in the layout of
Kijai/LivePortrait_safetensors (what ComfyUI-LivePortraitKJ loads): the four networks keep their
state_dict keys; the stitching file becomes flat with keys ``retarget_shoulder_module.mlp.0.weight``,
``retarget_mouth_module.…`` and ``retarget_eye_module.…``.  Every file is validated against the
network first (the loader's checks), tensors keep their dtype, nothing is unpickled beyond
``torch.load(weights_only=True)``, and each output is written atomically.
"""

import argparse
import sys
from pathlib import Path

from ..errors import ModelFileError, PlaymateError
from ..safeio import atomic_path
from .loader import LIVEPORTRAIT_FILES, STITCHING_GROUPS, model_files, read_checkpoint


def safetensors_state(stem, groups):
    """{attribute: state_dict} of one file -> the flat dict written to ``<stem>.safetensors``."""
    if stem != "stitching_retargeting_module":
        (state,) = groups.values()
        return dict(state)
    flat = {}
    for outer, attr in STITCHING_GROUPS.items():
        flat.update({"%s_module.%s" % (outer, key): value for key, value in groups[attr].items()})
    return flat


def convert_folder(src, dst):
    """Write DST/<stem>.safetensors for the five files found in SRC; returns the written paths."""
    from safetensors.torch import save_file

    files = model_files(src, "pth")
    dst = Path(dst)
    stitching = files["stitching_retargeting_module"]
    if len(read_checkpoint(stitching, "stitching_retargeting_module")) < len(STITCHING_GROUPS):
        raise ModelFileError("'%s' holds only the stitching MLP, no eye/lip retargeting (Ditto's file): only "
                             "complete LivePortrait folders can be converted." % stitching)
    written = []
    for stem in LIVEPORTRAIT_FILES:
        state = safetensors_state(stem, read_checkpoint(files[stem], stem))
        state = {k: v.contiguous() for k, v in state.items()}
        target = dst / (stem + ".safetensors")
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata={"format": "pt"})
        written.append(target)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m playmate.liveportrait.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("src", help="folder with the official .pth files")
    parser.add_argument("dst", help="folder for the .safetensors files")
    args = parser.parse_args(argv)
    try:
        for path in convert_folder(args.src, args.dst):
            print(path)
    except PlaymateError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
