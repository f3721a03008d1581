"""Where Ditto's released files live, and getting them.

Ditto's PyTorch release is the Hugging Face repository ``digital-avatar/ditto-talkinghead``; users
clone it (or download single files) into a root folder, ``models/ditto`` (ComfyUI:
``ComfyUI/models/ditto``).  The files Playmate reads, relative to that root::

    ditto_cfg/v0.4_hubert_cfg_pytorch.pkl               run configuration (plain pickle)
    ditto_pytorch/models/lmdm_v0.4_hubert.pth           the motion diffusion model (LMDM)
    ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx  the streaming HuBERT audio encoder
    ditto_pytorch/models/{appearance_extractor, motion_extractor, warp_network, decoder,
                          stitch_network}.pth           renderer = LivePortrait's networks renamed
                                                        (see playmate.liveportrait.loader.DITTO_NAMES)

Each file may also lie directly in the root (all files in one flat folder).  :func:`locate` takes
the root, its ``ditto_pytorch`` (or ``ditto_pytorch/models``) folder or the LMDM ``.pth`` itself,
plus extra roots (ComfyUI's other configured ``ditto`` folders) searched after it.  Missing files
are downloaded into the root's tree when online; offline, ONE error lists every missing file with
its folder and URL (:func:`playmate.hub.ensure_files`).
"""

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Optional

from ...errors import ModelFileError
from ...hub import Remote, ensure_files
from ...liveportrait.loader import DITTO_MODELS_DIR, DITTO_NAMES, DITTO_REPO

FOLDER_NAME = "ditto"  # under the models folder (ComfyUI/models/ditto)
CFG = "ditto_cfg/v0.4_hubert_cfg_pytorch.pkl"
LMDM = DITTO_MODELS_DIR + "/lmdm_v0.4_hubert.pth"
HUBERT = "ditto_pytorch/aux_models/hubert_streaming_fix_kv.onnx"
RENDERER = tuple("%s/%s" % (DITTO_MODELS_DIR, name) for name in DITTO_NAMES.values())
WHAT = "Ditto model file"


@dataclass(frozen=True)
class DittoFiles:
    root: Path                       # the (first) root folder; missing files were downloaded below it
    cfg: Path
    lmdm: Path
    hubert: Path
    renderer: Optional[Path] = None  # folder with the five renderer files (a LivePortrait model folder)


def _name(rel):
    return PurePosixPath(rel).name


def _root_of(path):
    """(root folder, explicit LMDM file or None) for a root, ditto_pytorch(/models) folder or LMDM file."""
    path = Path(path).expanduser()
    if path.suffix == ".pth" or path.is_file():
        if not path.is_file():
            raise ModelFileError("The Ditto model file '%s' does not exist: pass the Ditto folder (a clone of "
                                 "https://huggingface.co/%s) or the path of %s." % (path, DITTO_REPO, _name(LMDM)))
        if path.suffix != ".pth":
            raise ModelFileError("'%s' is not Ditto's motion model: pass the Ditto folder or the path of %s."
                                 % (path, _name(LMDM)))
        folder = path.parent
        if folder.name == "models" and folder.parent.name == "ditto_pytorch":
            folder = folder.parent.parent
        return folder, path
    if path.name == "models" and path.parent.name == "ditto_pytorch":
        return path.parent.parent, None
    if path.name == "ditto_pytorch":
        return path.parent, None
    return path, None


def _find(rel, roots):
    """The first existing copy of ``rel`` (tree layout, then flat) in ``roots``, else None."""
    for root in roots:
        for candidate in (root / rel, root / _name(rel)):
            if candidate.is_file():
                return candidate
    return None


def _renderer_folder(roots, need=all):
    """The first folder (tree, then flat, for each root) holding all (``need=any``: some) of the
    five renderer files, else None."""
    for root in roots:
        for folder in (root / DITTO_MODELS_DIR, root):
            if need((folder / _name(rel)).is_file() for rel in RENDERER):
                return folder
    return None


def _plan(root_or_file, extra_roots=(), renderer=False):
    """(root, {rel: (local path, remote or None)}, renderer folder or None): where each file is or goes."""
    root, lmdm = _root_of(root_or_file)
    roots = [root] + [_root_of(r)[0] for r in extra_roots if Path(r).expanduser().is_dir()]
    plan = {rel: (_find(rel, roots) or root / rel, Remote(DITTO_REPO, rel)) for rel in (CFG, HUBERT, LMDM)}
    if lmdm is not None:
        plan[LMDM] = (lmdm, None)
    render_folder = _renderer_folder(roots)
    if renderer and render_folder is None:
        render_folder = _renderer_folder(roots, any) or root / DITTO_MODELS_DIR
        plan.update({rel: (render_folder / _name(rel), Remote(DITTO_REPO, rel)) for rel in RENDERER})
    return root, plan, render_folder


def missing_files(root_or_file, extra_roots=(), renderer=False):
    """[(path, remote)] of the files :func:`locate` would have to download."""
    _, plan, _ = _plan(root_or_file, extra_roots, renderer)
    return [(path, remote) for path, remote in plan.values() if not path.is_file()]


def locate(root_or_file, extra_roots=(), renderer=False):
    """Find (download when missing and online) Ditto's files -> :class:`DittoFiles`.

    ``renderer``: also require the five renderer files (missing ones go to the folder that has
    some of them, else ``<root>/ditto_pytorch/models``); without it ``renderer`` is set only when
    all five are present.  Raises one :class:`ModelFileError` listing every file still missing
    when they cannot be fetched.
    """
    root, plan, render_folder = _plan(root_or_file, extra_roots, renderer)
    hint = "They are files of https://huggingface.co/%s; keep the repository's folder layout." % DITTO_REPO
    got = dict(zip(plan, ensure_files(plan.values(), WHAT, hint)))
    return DittoFiles(root=root, cfg=got[CFG], lmdm=got[LMDM], hubert=got[HUBERT], renderer=render_folder)
