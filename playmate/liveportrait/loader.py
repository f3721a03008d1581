"""Loading LivePortrait's five checkpoint files into one :class:`LivePortrait` module.

Accepted folder layouts (``folder`` is e.g. ``ComfyUI/models/liveportrait``):

* official ``.pth`` files, flat: ``<folder>/appearance_feature_extractor.pth`` ... or as in the
  official Hugging Face tree: ``<folder>/liveportrait/base_models/*.pth`` and
  ``<folder>/liveportrait/retargeting_models/stitching_retargeting_module.pth``;
* the widely used safetensors conversion (Kijai/LivePortrait_safetensors, the files
  ComfyUI-LivePortraitKJ downloads): ``<folder>/<stem>.safetensors``.  Same keys as the ``.pth``
  files except the stitching file, which is flat with keys ``retarget_shoulder_module.mlp.0.weight``,
  ``retarget_mouth_module.…``, ``retarget_eye_module.…``;
* Ditto's renderer (Hugging Face digital-avatar/ditto-talkinghead): the same networks and keys
  under other names (:data:`DITTO_NAMES`) in ``<folder>`` (= Ditto's ``ditto_pytorch/models``) or
  ``<folder>/ditto_pytorch/models`` (``<folder>`` = the Ditto root).  Ditto's ``stitch_network.pth``
  may hold only ``retarget_shoulder``: the model then loads without the eye/lip retargeting MLPs
  and :meth:`LivePortrait.retarget_eye` / ``retarget_lip`` raise :class:`InputError`.

``.pth`` files are read with ``torch.load(weights_only=True)`` only, so a pickle that carries code
is refused.  The official stitching file is a dict whose entries ``retarget_shoulder`` (stitching),
``retarget_mouth`` (lip) and ``retarget_eye`` (eye) hold state_dicts with a ``module.`` prefix;
its other top-level entries are ignored.  Every tensor is checked against the network: a file that
is missing, truncated, of another network or of other shapes raises :class:`ModelFileError`
naming the file and the first offending keys.  A missing file is downloaded when online
(:func:`playmate.hub.ensure_file`).

Precision (``precision=``): "fp32" (default) computes exactly as the reference (the golden
parity cases pass at their tolerances).  "bf16" / "fp16" run the convolutions under
``torch.autocast`` with that dtype (keypoint maths, the stitching MLPs, the flow field, its
softmax and all grid sampling stay float32; on CPU "fp16" runs as bf16); "auto" picks fp16 on
CUDA, bf16 on CPUs with native bf16 support (AVX512-BF16 / AMX) and fp32 otherwise.  The choice
is made on every call for the device the weights are on then
(:func:`playmate.models.compute_precision`): a model loaded on the CPU and moved to the GPU
(as ComfyUI does) computes in fp16 there.
Measured bf16-vs-golden deviation on CPU (case seed 1, synthetic weights, each stage fed its golden
inputs), max |diff| / max |golden|: F_feature_3d 1.1e-2, M keypoints 6e-3 (angles 0.05 deg),
W_out 1.1e-2, occlusion map 8e-3, deformation 2.2e-3; G image (0..1) max |diff| 0.15 on single
pixels, mean |diff| 2.1e-3.  Speed-up on a 2-core AVX512-BF16 EPYC: F 1.2x, W 1.65x, G 1.7x.
"""

import contextlib
import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from ..errors import InputError, ModelFileError
from ..hub import Remote, ensure_file
from ..models import check_precision, compute_precision
from . import keypoints as kpm
from . import sizes as lp_sizes
from .appearance import AppearanceFeatureExtractor
from .motion_extractor import MotionExtractor
from .spade import SPADEDecoder
from .stitching import make_mlp
from .warping import WarpingNetwork

LIVEPORTRAIT_FILES = ("appearance_feature_extractor", "motion_extractor", "warping_module",
                      "spade_generator", "stitching_retargeting_module")

# stem -> attributes of LivePortrait whose weights the file holds
FILE_NETWORKS = {
    "appearance_feature_extractor": ("appearance",),
    "motion_extractor": ("motion",),
    "warping_module": ("warping",),
    "spade_generator": ("spade",),
    "stitching_retargeting_module": ("stitching", "lip", "eye"),
}
# official nested group key -> LivePortrait attribute
STITCHING_GROUPS = OrderedDict([("retarget_shoulder", "stitching"), ("retarget_mouth", "lip"),
                                ("retarget_eye", "eye")])
# a key that only the given file has (used to name the network of a wrong file)
SIGNATURE_KEYS = {
    "appearance_feature_extractor": "resblocks_3d.3dr0.conv1.weight",
    "motion_extractor": "detector.fc_kp.weight",
    "warping_module": "dense_motion_network.mask.weight",
    "spade_generator": "G_middle_0.conv_0.weight_orig",
    "stitching_retargeting_module": "retarget_shoulder",
}

OFFICIAL_REPO = "KwaiVGI/LivePortrait"
SAFETENSORS_REPO = "Kijai/LivePortrait_safetensors"
DITTO_REPO = "digital-avatar/ditto-talkinghead"
DITTO_MODELS_DIR = "ditto_pytorch/models"  # the renderer's folder inside Ditto's tree
# LivePortrait stem -> name of the same network's file in Ditto's release
DITTO_NAMES = OrderedDict([("appearance_feature_extractor", "appearance_extractor.pth"),
                           ("motion_extractor", "motion_extractor.pth"),
                           ("warping_module", "warp_network.pth"),
                           ("spade_generator", "decoder.pth"),
                           ("stitching_retargeting_module", "stitch_network.pth")])
# the only file that may lack some groups: Ditto reads just retarget_shoulder from it
PARTIAL_STITCHING_FILE = DITTO_NAMES["stitching_retargeting_module"]
FORMATS = ("auto", "pth", "safetensors")


def official_subpath(stem):
    """Path of a .pth file inside the official tree (KwaiVGI/LivePortrait on Hugging Face)."""
    sub = "retargeting_models" if stem == "stitching_retargeting_module" else "base_models"
    return "liveportrait/%s/%s.pth" % (sub, stem)


def _candidates(folder, stem):
    """(layout name, local path, remote) for every layout, in the order they are tried."""
    ditto = Remote(DITTO_REPO, "%s/%s" % (DITTO_MODELS_DIR, DITTO_NAMES[stem]))
    return [
        ("pth", folder / (stem + ".pth"), Remote(OFFICIAL_REPO, official_subpath(stem))),
        ("pth-tree", folder / official_subpath(stem), Remote(OFFICIAL_REPO, official_subpath(stem))),
        ("safetensors", folder / (stem + ".safetensors"), Remote(SAFETENSORS_REPO, stem + ".safetensors")),
        ("ditto", folder / DITTO_NAMES[stem], ditto),
        ("ditto-tree", folder / DITTO_MODELS_DIR / DITTO_NAMES[stem], ditto),
    ]


def _resolve(folder, fmt):
    """[(stem, local path, remote)] of the five files for ``folder`` (see :func:`model_files`)."""
    if fmt not in FORMATS:
        raise InputError("LivePortrait weight format must be one of %s, got %r" % (", ".join(FORMATS), fmt))
    folder = Path(folder).expanduser()
    table = {stem: _candidates(folder, stem) for stem in LIVEPORTRAIT_FILES}
    layouts = {"pth": ("pth", "pth-tree", "ditto", "ditto-tree"), "safetensors": ("safetensors",)}
    allowed = layouts.get(fmt, ("pth", "pth-tree", "safetensors", "ditto", "ditto-tree"))
    counts = {name: sum(path.exists() for cands in table.values() for n, path, _ in cands if n == name)
              for name in allowed}
    preferred = max(allowed, key=lambda name: (counts[name], name == "safetensors"))
    out = []
    for stem, cands in table.items():
        ordered = sorted((c for c in cands if c[0] in allowed), key=lambda c: c[0] != preferred)
        _, path, remote = next((c for c in ordered if c[1].exists()), ordered[0])
        out.append((stem, path, remote))
    return out


def checkpoint_paths(folder, fmt="auto"):
    """The five paths :func:`load_liveportrait` would read (present or not; nothing is downloaded)."""
    return tuple(path for _, path, _ in _resolve(folder, fmt))


def missing_files(folder, fmt="auto"):
    """[(path, remote)] of the five files :func:`model_files` would have to download."""
    return [(path, remote) for _, path, remote in _resolve(folder, fmt) if not path.is_file()]


def model_files(folder, fmt="auto"):
    """stem -> local path of each of the five files, downloading missing ones when online.

    fmt "auto": the layout that already has the most files in ``folder`` (safetensors when the
    folder is empty); a file missing in that layout is taken from another layout when present.
    fmt "pth" (flat or official tree, or Ditto's names) / "safetensors": only that format.
    """
    return {stem: ensure_file(path, remote, what="LivePortrait model file")
            for stem, path, remote in _resolve(folder, fmt)}


def _where(path):
    return "'%s' in '%s'" % (path.name, path.parent)


def _read_raw(path):
    """The file's dict of tensors (nested for the official stitching file); never unpickles code."""
    if not path.is_file():
        raise ModelFileError("Expected the LivePortrait model file %s but it is not a file." % _where(path))
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        try:
            return load_file(str(path))
        except Exception as exc:
            raise ModelFileError("Cannot read %s as safetensors (%s): the file is truncated or not a "
                                 "safetensors file; download it again." % (_where(path), _first_line(exc))) from None
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ModelFileError("Refused to load %s: it holds Python objects other than tensors, which could run "
                             "code (%s). Use the official file or its safetensors conversion."
                             % (_where(path), _first_line(exc))) from None
    except Exception as exc:
        raise ModelFileError("Cannot read %s (%s): the file is truncated or corrupt; download it again."
                             % (_where(path), _first_line(exc))) from None
    if not isinstance(data, dict):
        raise ModelFileError("%s does not hold a state_dict (found %s); it is not a LivePortrait checkpoint."
                             % (_where(path), type(data).__name__))
    return data


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return (text[0] if text else exc.__class__.__name__)[:200]


def _guess_network(keys):
    keys = list(keys)
    for stem, sig in SIGNATURE_KEYS.items():
        if any(k == sig or k.startswith(sig) for k in keys):
            return stem
    return None


def _split_stitching(raw, path):
    """Official nested dict or flat safetensors keys -> {attribute: state_dict without prefixes}.

    Ditto's stitch_network.pth may lack the eye/lip groups (only retarget_shoulder is required)."""
    groups = {}
    for outer, attr in STITCHING_GROUPS.items():
        if isinstance(raw.get(outer), dict):
            sub = raw[outer]
            groups[attr] = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in sub.items()}
        else:
            prefix = outer + "_module."
            groups[attr] = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if not groups[attr] and attr != "stitching" and path.name == PARTIAL_STITCHING_FILE:
            del groups[attr]
        elif not groups[attr]:
            other = _guess_network(raw)
            hint = " It looks like the %s file." % other if other and other != "stitching_retargeting_module" else ""
            raise ModelFileError("%s has no '%s' weights: it is not LivePortrait's stitching_retargeting_module.%s "
                                 "Download the right file." % (_where(path), outer, hint))
    return groups


def _check(state, expected, path, label):
    """Validate keys, types and shapes of ``state`` against ``expected`` (a module state_dict)."""
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong = ["%s %s (expected %s)" % (k, tuple(v.shape) if torch.is_tensor(v) else type(v).__name__,
                                      tuple(expected[k].shape))
             for k, v in state.items() if k in expected and (not torch.is_tensor(v) or v.shape != expected[k].shape)]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)):
        if items:
            parts.append("%d %s (first: %s)" % (len(items), title, ", ".join(items[:3])))
    other = _guess_network(state) if unexpected else None
    hint = " It looks like the %s file." % other if other and other != path.stem else ""
    raise ModelFileError("%s does not match LivePortrait's %s: %s.%s Download the right file again."
                         % (_where(path), label, "; ".join(parts), hint))


def read_checkpoint(path, stem, expected=None):
    """Read and validate one file -> {attribute: state_dict} (tensors as stored in the file).

    expected: {attribute: reference state_dict} (shapes only, e.g. from a meta-device model); by
    default the network at the sizes read from the file's own tensors (:mod:`.sizes`).
    """
    path = Path(path)
    raw = _read_raw(path)
    if stem == "stitching_retargeting_module":
        groups = _split_stitching(raw, path)
    else:
        (attr,) = FILE_NETWORKS[stem]
        groups = {attr: dict(raw)}
    if expected is None:
        expected = expected_state_dicts({attr: lp_sizes.infer(attr, state) for attr, state in groups.items()})
    for attr, state in groups.items():
        _check(state, expected[attr], path, "%s (%s)" % (stem, attr) if len(groups) > 1 else stem)
    return groups


class LivePortrait(nn.Module):
    """LivePortrait's networks and the operations the pipeline needs.

    Tensors: images RGB float in [0, 1], NCHW 256x256; keypoints [B,21,3] (row vectors, see
    keypoints.py); angles in degrees.  Every method accepts any batch size B.

    sizes: {attribute: constructor arguments} of the four convolutional networks, or a preset name
    ("official", the default, or "tiny"; see :mod:`.sizes`); missing attributes take official sizes.
    """

    def __init__(self, sizes="official"):
        super().__init__()
        sizes = dict(lp_sizes.PRESETS[sizes] if isinstance(sizes, str) else sizes)
        sizes = {attr: sizes.get(attr) or lp_sizes.OFFICIAL[attr] for attr in lp_sizes.OFFICIAL}
        self.sizes = sizes
        self.appearance = AppearanceFeatureExtractor(**sizes["appearance"])
        self.motion = MotionExtractor(**sizes["motion"])
        self.warping = WarpingNetwork(**sizes["warping"])
        self.spade = SPADEDecoder(**sizes["spade"])
        self.stitching = make_mlp("stitching")
        self.eye = make_mlp("eye")  # eye / lip: None when the stitching file has none (Ditto's)
        self.lip = make_mlp("lip")
        self.precision = "fp32"

    # ---- precision -------------------------------------------------------------------------
    @property
    def device(self):
        return self.spade.fc.weight.device

    @device.setter
    def device(self, value):
        """Ignored: the device is where the weights are (ComfyUI's ModelPatcher assigns it)."""

    @property
    def dtype(self):
        return self.spade.fc.weight.dtype

    def set_precision(self, precision):
        """"auto" | "fp32" | "fp16" | "bf16" (see the module docstring). Returns self.

        Kept as asked: :attr:`compute_precision` says what it means where the model is now.
        """
        self.precision = check_precision(precision)
        return self

    @property
    def compute_precision(self):
        """"fp32", "bf16" or "fp16": the precision of the next call, on the device the weights are on."""
        return compute_precision(self.precision, self.device)

    def _autocast(self):
        precision = self.compute_precision
        if precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _image(self, image, what="image"):
        if not torch.is_tensor(image) or image.dim() != 4 or image.shape[1] != 3:
            raise InputError("LivePortrait %s must be a [B,3,H,W] RGB tensor, got %s"
                             % (what, tuple(image.shape) if torch.is_tensor(image) else type(image).__name__))
        if image.shape[2] != 256 or image.shape[3] != 256:
            raise InputError("LivePortrait %s must be a 256x256 face crop, got %dx%d"
                             % (what, image.shape[3], image.shape[2]))
        return image.to(self.device, self.dtype)

    def _kp(self, kp):
        return kp.to(self.device, torch.float32)

    # ---- F and M -----------------------------------------------------------------------------
    def extract_feature_3d(self, image):
        """image [B,3,256,256] RGB 0..1 -> appearance volume [B,32,16,64,64] (float32)."""
        with self._autocast():
            return self.appearance(self._image(image)).float().contiguous()

    def extract_motion(self, image, with_logits=False):
        """image [B,3,256,256] -> dict(pitch, yaw, roll [B] degrees, t [B,3], exp [B,21,3],
        scale [B], kp [B,21,3]) in float32; with_logits adds pitch_logits ... [B,66]."""
        with self._autocast():
            raw = {k: v.float() for k, v in self.motion(self._image(image)).items()}
        b = raw["kp"].shape[0]
        out = {name: kpm.headpose_degrees(raw[name]) for name in ("pitch", "yaw", "roll")}
        out.update(t=raw["t"], exp=raw["exp"].reshape(b, -1, 3), scale=raw["scale"].reshape(b),
                   kp=raw["kp"].reshape(b, -1, 3))
        if with_logits:
            out.update({name + "_logits": raw[name] for name in ("pitch", "yaw", "roll")})
        return out

    # ---- stitching and retargeting (always float32) ------------------------------------------
    def _mlp(self, mlp, x):
        w = mlp.mlp[0].weight
        return mlp(x.to(w.device, w.dtype)).float()

    def stitching_delta(self, kp_src, kp_drv):
        """Raw stitching MLP output [B,65]: 63 keypoint offsets and a (dx, dy) shift."""
        kp_src, kp_drv = self._kp(kp_src), self._kp(kp_drv)
        return self._mlp(self.stitching, kpm.stitching_input(kp_src.expand_as(kp_drv), kp_drv))

    def stitch(self, kp_src, kp_drv):
        """Driving keypoints corrected by the stitching MLP so the face fits the source's shoulders."""
        kp_drv = self._kp(kp_drv)
        return kpm.apply_stitching(kp_drv, self.stitching_delta(kp_src, kp_drv))

    def _retargeting(self, attr, what):
        mlp = getattr(self, attr)
        if mlp is None:
            raise InputError("This renderer has no %s retargeting network: its stitching file (Ditto's %s) "
                             "holds only the stitching MLP. For eye/lip controls use LivePortrait's own model "
                             "files as the renderer, or set the %s control to keep." % (what, PARTIAL_STITCHING_FILE, what))
        return mlp

    def retarget_eye(self, kp_src, eye_ratio):
        """kp_src [B,21,3], eye_ratio [B,3] (source left, source right, target) -> delta [B,21,3]."""
        eye = self._retargeting("eye", "eye")
        kp_src = self._kp(kp_src)
        return self._mlp(eye, kpm.retargeting_input(kp_src, self._kp(eye_ratio))).reshape(kp_src.shape)

    def retarget_lip(self, kp_src, lip_ratio):
        """kp_src [B,21,3], lip_ratio [B,2] (source, target) -> delta [B,21,3]."""
        lip = self._retargeting("lip", "lip")
        kp_src = self._kp(kp_src)
        return self._mlp(lip, kpm.retargeting_input(kp_src, self._kp(lip_ratio))).reshape(kp_src.shape)

    # ---- W and G -------------------------------------------------------------------------------
    def warp(self, feature_3d, kp_src, kp_drv):
        """W: -> dict(out [B,256,64,64], occlusion_map [B,1,64,64], deformation [B,16,64,64,3]).

        feature_3d may have batch 1 (one source for all driving keypoint sets) or B.
        """
        kp_drv = self._kp(kp_drv)
        kp_src = self._kp(kp_src).expand_as(kp_drv)
        with self._autocast():
            out = self.warping(feature_3d.to(self.device, self.dtype), kp_src, kp_drv)
        return {k: v.float() for k, v in out.items()}

    def decode(self, warped):
        """G: warped feature [B,256,64,64] -> RGB image [B,3,512,512] in (0, 1)."""
        with self._autocast():
            return self.spade(warped.to(self.device, self.dtype)).float()

    def warp_decode(self, feature_3d, kp_src, kp_drv):
        """W then G -> dict(out [B,3,512,512], occlusion_map, deformation, warped [B,256,64,64])."""
        warped = self.warp(feature_3d, kp_src, kp_drv)
        return {"out": self.decode(warped["out"]), "occlusion_map": warped["occlusion_map"],
                "deformation": warped["deformation"], "warped": warped["out"]}


def expected_state_dicts(sizes="official"):
    """{attribute: state_dict of meta tensors} of every network at ``sizes`` (see :class:`LivePortrait`)."""
    with torch.device("meta"):
        model = LivePortrait(sizes)
    return {attr: model.get_submodule(attr).state_dict() for stem in LIVEPORTRAIT_FILES for attr in FILE_NETWORKS[stem]}


def _check_fit(sizes, files):
    """The five files must be of one model: each network's sizes fit those of the next."""
    network_file = {attr: files[stem] for stem, attrs in FILE_NETWORKS.items() for attr in attrs}
    bad = lp_sizes.mismatches(sizes)
    if bad:
        what, a, va, b, vb = bad[0]
        raise ModelFileError("%s and %s are of different LivePortrait models: %s %s vs %s (and %d more). Use the "
                             "five files of one release." % (_where(network_file[a]), _where(network_file[b]),
                                                            what, va, vb, len(bad) - 1))


def load_liveportrait(folder, device="cpu", dtype=torch.float32, precision="fp32", fmt="auto"):
    """Load the five LivePortrait files from ``folder`` -> LivePortrait (eval mode, no grads).

    device / dtype: where and in which dtype the weights live (float32 for exact results);
    precision: compute mode, see the module docstring; fmt: "auto", "pth" or "safetensors".
    Every network's sizes come from its file's tensors (:mod:`.sizes`): the official release,
    and any consistent smaller build (the synthetic test models), load alike.
    """
    device = torch.device(device)
    files = model_files(folder, fmt)
    states = {}
    for stem, path in files.items():
        states.update(read_checkpoint(path, stem))
    sizes = {attr: lp_sizes.infer(attr, state) for attr, state in states.items() if attr in lp_sizes.OFFICIAL}
    _check_fit(sizes, files)
    expected = expected_state_dicts(sizes)
    with torch.device("meta"):
        model = LivePortrait(sizes)
    for attr, state in states.items():
        ready = {}
        for key, meta in expected[attr].items():
            value = state.get(key)
            if value is None:  # BatchNorm counters are unused at inference; some exports drop them
                value = torch.zeros((), dtype=torch.long)
            target = dtype if meta.is_floating_point() else meta.dtype
            ready[key] = value.to(device=device, dtype=target).contiguous()
        model.get_submodule(attr).load_state_dict(ready, strict=True, assign=True)
    for attr in set(expected) - set(states):  # eye / lip absent from Ditto's stitch_network.pth
        setattr(model, attr, None)
    _channels_last(model.appearance)
    model.eval().requires_grad_(False)
    return model.set_precision(precision)


def _channels_last(module):
    """Store conv weights channels-last (F runs ~15 % faster on CPU so; W and G ran slower)."""
    for sub in module.modules():
        if isinstance(sub, (nn.Conv2d, nn.Conv3d)):
            fmt = torch.channels_last if sub.weight.dim() == 4 else torch.channels_last_3d
            sub.weight.data = sub.weight.data.contiguous(memory_format=fmt)
