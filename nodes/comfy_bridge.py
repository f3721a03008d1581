"""Everything that touches ComfyUI itself, imported lazily.

Inside ComfyUI: model folders come from ``folder_paths``, devices and VRAM from
``comfy.model_management`` (models are wrapped in a ``ModelPatcher`` and loaded
with ``load_models_gpu`` like core models), progress goes to
``comfy.utils.ProgressBar`` with a preview, and the interrupt flag is honoured
between batches.  Outside ComfyUI (tests, scripts) the same calls fall back to
a models folder ($PLAYMATE_MODELS or ./models), the CPU/CUDA device and no-ops.
"""

import os
from pathlib import Path

import torch

from playmate.models import FOLDERS, models_dir, resolve_device


def _comfy():
    try:
        import comfy.model_management as mm
        import folder_paths
        return mm, folder_paths
    except ImportError:
        return None, None


def in_comfyui():
    return _comfy()[0] is not None


def register_folders():
    """Add our model folders to ComfyUI (keeps paths users set in extra_model_paths.yaml)."""
    _, fp = _comfy()
    if fp is None:
        return
    for name in FOLDERS.values():
        fp.add_model_folder_path(name, os.path.join(fp.models_dir, name), is_default=True)


def folder_paths_for(name):
    """Every folder configured for model kind ``name`` (the default one first)."""
    _, fp = _comfy()
    if fp is not None:
        register_folders()
        return [Path(p) for p in fp.get_folder_paths(name)]
    return [models_dir() / name]


def default_folder(name):
    return folder_paths_for(name)[0]


def folder_with(name, pattern):
    """The first configured folder of ``name`` (extra_model_paths.yaml included) holding a file
    matching ``pattern``; else the default folder, where missing files get downloaded."""
    for folder in folder_paths_for(name):
        if folder.is_dir() and any(folder.glob(pattern)):
            return folder
    return default_folder(name)


def models_root():
    """The models folder that holds our sub-folders (ComfyUI/models outside tests)."""
    return default_folder("playmate").parent


def list_files(name, suffixes):
    """Files (relative names) under the folders of ``name`` whose suffix is in ``suffixes``."""
    out = []
    for folder in folder_paths_for(name):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and path.suffix in suffixes and not path.name.startswith("."):
                    rel = path.relative_to(folder).as_posix()
                    if rel not in out:
                        out.append(rel)
    return out


def find_file(name, relative):
    """Full path of ``relative`` in the folders of ``name`` (the first that has it)."""
    for folder in folder_paths_for(name):
        path = folder / relative
        if path.exists():
            return path
    return default_folder(name) / relative


def output_directory():
    _, fp = _comfy()
    return Path(fp.get_output_directory() if fp is not None else os.environ.get("PLAYMATE_OUTPUT", "output"))


def input_directory():
    _, fp = _comfy()
    return Path(fp.get_input_directory() if fp is not None else os.environ.get("PLAYMATE_INPUT", "input"))


def motion_files():
    """MOTION files offered by Load Motion: input/**.safetensors and output/playmate/**.safetensors."""
    found = []
    for root, tag in ((input_directory(), ""), (output_directory(), "[output] ")):
        if root.is_dir():
            found += [tag + p.relative_to(root).as_posix() for p in sorted(root.rglob("*.safetensors"))]
    return found or ["(no .safetensors motion files yet)"]


def resolve_motion_file(name):
    if name.startswith("[output] "):
        path = output_directory() / name[len("[output] "):]
    else:
        path = input_directory() / name
    return path if path.is_file() else None


# ---------------------------------------------------------------- devices
def torch_device():
    mm, _ = _comfy()
    if mm is not None:
        return mm.get_torch_device()
    return resolve_device("auto")


def offload_device():
    mm, _ = _comfy()
    if mm is not None:
        return mm.unet_offload_device()
    return torch_device()


def torch_module(obj):
    """The nn.Module holding ``obj``'s weights: itself, or its ``model`` / ``net`` attribute."""
    for candidate in (obj, getattr(obj, "model", None), getattr(obj, "net", None)):
        if isinstance(candidate, torch.nn.Module):
            return candidate
    return None


class WeightsHolder(torch.nn.Module):
    """What a ModelPatcher manages: the model's weights as a child module, and the plain ``device``
    attribute ModelPatcher assigns (transformers models, for one, have a read-only ``device``)."""

    def __init__(self, module):
        super().__init__()
        self.inner = module
        self.device = next(module.parameters()).device


class Managed:
    """A model kept on the offload device and moved to the compute device for use.

    In ComfyUI its weights (``torch_module``) are wrapped in a ModelPatcher so that
    ``load_models_gpu`` can evict other models to make room and offload this one later;
    ``use()`` returns the object with its weights on the compute device.
    """

    def __init__(self, obj):
        self.obj = obj
        self._patcher = None

    def use(self):
        mm, _ = _comfy()
        module = torch_module(self.obj)
        if mm is None or module is None:
            return self.obj
        import comfy.model_patcher
        if self._patcher is None:
            self._patcher = comfy.model_patcher.ModelPatcher(
                WeightsHolder(module), load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device())
        # Whole-module moves: partial (lowvram) loading only works for comfy.ops layers.
        mm.load_models_gpu([self._patcher], force_full_load=True)
        return self.obj


def managed(obj):
    """The one :class:`Managed` wrapper of ``obj``, kept on the object itself.

    The shared model cache holds the plain model (the library's own functions return it from the
    same cache keys), so only the wrapper belongs to the nodes; it lives as long as the model.
    """
    wrapper = getattr(obj, "_playmate_managed", None)
    if wrapper is None:
        wrapper = Managed(obj)
        obj._playmate_managed = wrapper
    return wrapper


# ------------------------------------------------------- progress/interrupt
def check_interrupt():
    mm, _ = _comfy()
    if mm is not None:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """ComfyUI progress bar with a JPEG preview of the last frame (no-op outside ComfyUI)."""

    def __init__(self, total):
        self.total = int(total)
        self.bar = None
        try:
            import comfy.utils
            self.bar = comfy.utils.ProgressBar(self.total)
        except ImportError:
            pass

    def __call__(self, done, total=None, frame=None):
        if self.bar is None:
            return
        preview = None
        if frame is not None:
            from PIL import Image
            from playmate.face import to_uint8_rgb
            preview = ("JPEG", Image.fromarray(to_uint8_rgb(frame, "preview")), 512)
        self.bar.update_absolute(done, total or self.total, preview)
