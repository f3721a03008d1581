"""Golden parity check of the LivePortrait port, and synthetic model folders.

    python -m playmate.parity liveportrait [--cases DIR] [--manifest FILE] [--weights-generator FILE]
                                           [--formats pth,safetensors] [--keep-weights DIR]
    python -m playmate.parity write-weights --seed N OUT_DIR [--format pth|safetensors] [--rule own|golden]

``liveportrait``: for every ``case_seed*.npz`` in DIR (default: see :mod:`playmate.parity.common`) the
synthetic weights of the case's seed are generated with the golden generator, checked entry by
entry against the case's sha256, written in the official ``.pth`` layout, converted to
safetensors with :mod:`playmate.liveportrait.convert`, and each folder is loaded through
:func:`load_liveportrait`.  Every stage (a)-(h) of the golden README is then run on the stored
inputs of that stage and each array is compared with the README's tolerances:

    |actual - golden| <= atol * max|golden| + 1e-4 * |golden|   (elementwise)
    atol 1e-5: M outputs, rotations, keypoints, stitching / retargeting outputs
    atol 1e-4: F_feature_3d, W_out, occlusion maps, deformations
    angles (M_*_pitch/yaw/roll, headpose_degrees_test): |diff| <= 1e-3 degrees
    images (G_out, WD_out): |diff| <= 2e-3 and mean |diff| <= 2e-5

One row per array: max |err|, max |err| / max |golden|, and "x tol" = the worst error divided by
what the tolerance allows (<= 1 passes).  Exit status 1 when any array fails.
"""

import argparse
import hashlib
import re
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import PlaymateError
from ..liveportrait import keypoints as kpm
from ..liveportrait.convert import convert_folder, safetensors_state
from ..liveportrait.loader import FILE_NETWORKS, STITCHING_GROUPS, load_liveportrait
from ..safeio import atomic_path
from .common import golden_dir, load_golden_weights, load_manifest, report

STAGES = OrderedDict([("a", "F"), ("b", "M"), ("c", "rotations"), ("d", "transform_keypoint"),
                      ("e", "stitching/retargeting"), ("f", "W"), ("g", "G"), ("h", "warp_decode")])


# ---- synthetic weights --------------------------------------------------------------------------

def synthetic_weights(generator, manifest, seed):
    """{file name (.pth): numpy state (nested for the stitching file)} for one seed."""
    return {name: generator.make_state_dict(info["entries"], seed) for name, info in manifest["files"].items()}


def weight_mismatches(weights, case):
    """Names ("<file>:<entry>") whose sha256_16 differs from the case's record (empty if all agree)."""
    bad = []
    for full, want in zip(case["weight_entry_names"], case["weight_entry_sha256_16"]):
        file_name, entry = str(full).split(":", 1)
        state = weights.get(file_name, {})
        if "/" in entry:
            outer, inner = entry.split("/", 1)
            value = state.get(outer, {}).get(inner)
        else:
            value = state.get(entry)
        got = None if value is None else hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest()[:16]
        if got != str(want):
            bad.append(str(full))
    return bad


def _tensors(state):
    return OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in state.items())


def write_official(weights, out_dir):
    """The official layout, flat: torch.save of an OrderedDict per network file; the stitching file
    a dict of three OrderedDicts (retarget_shoulder / retarget_mouth / retarget_eye, keys ``module.*``)."""
    out_dir = Path(out_dir)
    for name, state in weights.items():
        if all(isinstance(v, dict) for v in state.values()):
            obj = {outer: _tensors(inner) for outer, inner in state.items()}
        else:
            obj = _tensors(state)
        with atomic_path(out_dir / name) as tmp:
            torch.save(obj, str(tmp))


def write_safetensors(weights, out_dir):
    """The Kijai safetensors layout (see convert.py), written straight from the synthetic weights."""
    from safetensors.torch import save_file
    out_dir = Path(out_dir)
    for name, state in weights.items():
        stem = Path(name).stem
        if stem == "stitching_retargeting_module":
            groups = {attr: {k[len("module."):]: v for k, v in state[outer].items()} for outer, attr in STITCHING_GROUPS.items()}
        else:
            groups = {FILE_NETWORKS[stem][0]: state}
        flat = {k: torch.from_numpy(np.asarray(v)) for k, v in safetensors_state(stem, groups).items()}
        with atomic_path(out_dir / (stem + ".safetensors")) as tmp:
            save_file(flat, str(tmp), metadata={"format": "pt"})


SYNTHETIC_NOTE = """Synthetic LivePortrait weights: seed %d of the %s.
Random numbers in the official checkpoint layout, NOT the real model: for tests and benchmarks only.
Outputs made with them are meaningless images.
"""
RULES = {"own": "project's own networks (PyTorch default init)", "golden": "golden_weights.py rule"}


def own_weights(seed, sizes="official"):
    """{file name (.pth): numpy state} from the project's own LivePortrait networks at ``sizes`` ("official"
    or "tiny", see :mod:`playmate.liveportrait.sizes`), default-initialised under ``torch.manual_seed(seed)``
    -- no golden data needed (the demo and write-test-models)."""
    from ..liveportrait.loader import LivePortrait
    from ..liveportrait.spade import SpectralNormConv2d
    torch.manual_seed(seed)
    model = LivePortrait(sizes)
    for conv in model.modules():  # declared without an init (the files always hold them): give them one
        if isinstance(conv, SpectralNormConv2d):
            w = conv.weight_orig.data
            w.normal_(0.0, (1.0 / w[0].numel()) ** 0.5)
            if conv.bias is not None:
                conv.bias.data.zero_()
            # u, v: the top singular vectors of the weight, as spectral norm's power iteration leaves them
            u, _, vh = torch.linalg.svd(w.reshape(w.shape[0], -1), full_matrices=False)
            conv.weight_u.copy_(u[:, 0])
            conv.weight_v.copy_(vh[0])
    numpy = lambda module: OrderedDict((k, v.detach().numpy()) for k, v in module.state_dict().items())
    weights = {}
    for stem, attrs in FILE_NETWORKS.items():
        if stem == "stitching_retargeting_module":
            weights[stem + ".pth"] = {outer: OrderedDict(("module." + k, v) for k, v in numpy(getattr(model, attr)).items())
                                      for outer, attr in STITCHING_GROUPS.items()}
        else:
            weights[stem + ".pth"] = numpy(getattr(model, attrs[0]))
    return weights


# ---- stages --------------------------------------------------------------------------------------

def compute_stages(model, case):
    """Every golden array recomputed from the stored inputs of its stage -> {name: float32 array}."""
    g = {k: torch.from_numpy(np.asarray(case[k])) for k in case.files if case[k].dtype == np.float32}
    out = OrderedDict()
    out["F_feature_3d"] = model.extract_feature_3d(g["source_image"])
    for tag, image in (("src", g["source_image"]), ("drv", g["driving_image"])):
        m = model.extract_motion(image, with_logits=True)
        for name in ("pitch", "yaw", "roll"):
            out["M_%s_raw_%s" % (tag, name)] = m[name + "_logits"]
        out["M_%s_raw_t" % tag] = m["t"]
        out["M_%s_raw_exp" % tag] = m["exp"].reshape(1, -1)
        out["M_%s_raw_scale" % tag] = m["scale"].reshape(-1, 1)
        out["M_%s_raw_kp" % tag] = m["kp"].reshape(1, -1)
        for name in ("pitch", "yaw", "roll"):
            out["M_%s_%s" % (tag, name)] = m[name].reshape(-1, 1)
        for name in ("kp", "exp", "t"):
            out["M_%s_%s" % (tag, name)] = m[name]
        out["M_%s_scale" % tag] = m["scale"].reshape(-1, 1)
    out["headpose_degrees_test"] = kpm.headpose_degrees(g["headpose_bins_test"])

    angles = g["rot_angles"]
    out["rot_matrices"] = kpm.rotation_matrix(angles[:, 0], angles[:, 1], angles[:, 2])
    for tag in ("src", "drv"):
        out["R_" + tag] = kpm.rotation_matrix(*(g["M_%s_%s" % (tag, a)][:, 0] for a in ("pitch", "yaw", "roll")))
        out["kp_" + tag] = kpm.transform_keypoint(g["M_%s_kp" % tag], g["M_%s_exp" % tag], g["R_" + tag],
                                                  g["M_%s_t" % tag], g["M_%s_scale" % tag])

    out["stitch_delta"] = model.stitching_delta(g["kp_src"], g["kp_drv"])
    out["kp_drv_stitched"] = model.stitch(g["kp_src"], g["kp_drv"])
    out["eye_delta"] = model.retarget_eye(g["kp_src"], g["eye_ratio"])
    out["lip_delta"] = model.retarget_lip(g["kp_src"], g["lip_ratio"])

    w = model.warp(g["F_feature_3d"], g["kp_src"], g["kp_drv_stitched"])
    out["W_out"], out["W_occlusion_map"], out["W_deformation"] = w["out"], w["occlusion_map"], w["deformation"]
    out["G_out"] = model.decode(g["W_out"])

    delta = g["WD_pose_delta_deg"]
    src_angles = [g["M_src_%s" % a][:, 0] for a in ("pitch", "yaw", "roll")]
    rot = kpm.edited_rotation(*src_angles, delta[0], delta[1], delta[2])
    out["WD_kp_driving_before_stitching"] = kpm.transform_keypoint(
        g["M_src_kp"], g["M_drv_exp"], rot, g["M_src_t"], g["M_src_scale"], translate_z=True
    ) + g["eye_delta"] + g["lip_delta"]
    out["WD_kp_driving"] = model.stitch(g["kp_src"], g["WD_kp_driving_before_stitching"])
    wd = model.warp_decode(g["F_feature_3d"], g["kp_src"], g["WD_kp_driving"])
    out["WD_out"], out["WD_occlusion_map"], out["WD_deformation"] = wd["out"], wd["occlusion_map"], wd["deformation"]
    return OrderedDict((k, v.detach().float().cpu().numpy()) for k, v in out.items())


# ---- comparison ----------------------------------------------------------------------------------

def stage_of(name):
    if name == "F_feature_3d":
        return "a"
    if name.startswith("M_") or name == "headpose_degrees_test":
        return "b"
    if name == "rot_matrices" or name.startswith("R_"):
        return "c"
    if name in ("kp_src", "kp_drv"):
        return "d"
    if name.startswith("W_"):
        return "f"
    if name == "G_out":
        return "g"
    if name.startswith("WD_"):
        return "h"
    return "e"


def tolerance(name):
    """("rel", atol) | ("deg", abs) | ("image", abs, mean abs) as in the golden README."""
    if name in ("G_out", "WD_out"):
        return ("image", 2e-3, 2e-5)
    if re.fullmatch(r"M_(src|drv)_(pitch|yaw|roll)", name) or name == "headpose_degrees_test":
        return ("deg", 1e-3)
    if name in ("F_feature_3d", "W_out") or name.endswith(("_deformation", "_occlusion_map")):
        return ("rel", 1e-4)
    return ("rel", 1e-5)


@dataclass
class Row:
    case: str
    fmt: str
    name: str
    max_abs: float
    rel: float       # max |err| / max |golden|
    ratio: float     # worst error / allowed error (<= 1 passes)

    @property
    def ok(self):
        return self.ratio <= 1.0


def compare(name, actual, golden):
    """-> (max |err|, max |err| / max |golden|, worst error / allowed)."""
    actual = np.asarray(actual, np.float64)
    golden = np.asarray(golden, np.float64)
    if actual.shape != golden.shape:
        return float("inf"), float("inf"), float("inf")
    diff = np.abs(actual - golden)
    scale = float(np.abs(golden).max()) or 1.0
    max_abs = float(diff.max())
    if not np.isfinite(diff).all():
        return float("inf"), float("inf"), float("inf")
    tol = tolerance(name)
    if tol[0] == "rel":
        ratio = float((diff / (tol[1] * scale + 1e-4 * np.abs(golden))).max())
    elif tol[0] == "deg":
        ratio = max_abs / tol[1]
    else:
        ratio = max(max_abs / tol[1], float(diff.mean()) / tol[2])
    return max_abs, max_abs / scale, ratio


def compare_case(actual, case, case_name="", fmt=""):
    return [Row(case_name, fmt, name, *compare(name, value, case[name])) for name, value in actual.items()]


def format_table(rows):
    lines = ["%-14s %-12s %-32s %11s %11s %9s  %s" % ("case", "format", "array", "max|err|", "err/max|g|", "x tol", "")]
    for r in rows:
        lines.append("%-14s %-12s %-32s %11.3e %11.3e %9.3f  %s"
                     % (r.case, r.fmt, r.name, r.max_abs, r.rel, r.ratio, "ok" if r.ok else "FAIL"))
    return "\n".join(lines)


def format_summary(rows):
    lines = ["worst per stage:"]
    for key, title in STAGES.items():
        sel = [r for r in rows if stage_of(r.name) == key]
        if sel:
            worst = max(sel, key=lambda r: r.ratio)
            lines.append("  (%s) %-22s worst err/max|g| %.2e   worst x tol %.3f (%s)%s"
                         % (key, title, max(r.rel for r in sel), worst.ratio, worst.name,
                            "" if all(r.ok for r in sel) else "  FAIL"))
    return "\n".join(lines)


# ---- commands ------------------------------------------------------------------------------------

def run_parity(cases_dir, manifest_path, generator_path, formats=("pth", "safetensors"), work=None, log=print):
    """Run the check on every case -> list of Rows (a failed weight check gives an inf row)."""
    cases = sorted(Path(cases_dir).glob("case_seed*.npz"))
    if not cases:
        raise PlaymateError("No case_seed*.npz files in '%s' (pass --cases DIR)." % cases_dir)
    manifest, generator = load_manifest(manifest_path), load_golden_weights(generator_path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="lp-parity-") as tmp:
        root = Path(work) if work else Path(tmp)
        for case_path in cases:
            case = np.load(case_path)
            seed = int(case["seed"])
            weights = synthetic_weights(generator, manifest, seed)
            bad = weight_mismatches(weights, case)
            if bad:
                log("%s: %d generated weight entries differ from the case (first: %s)"
                    % (case_path.name, len(bad), ", ".join(bad[:3])))
                rows.append(Row(case_path.stem, "-", "weights sha256", float("inf"), float("inf"), float("inf")))
                continue
            folders = {"pth": root / ("seed%d" % seed) / "pth", "safetensors": root / ("seed%d" % seed) / "safetensors"}
            write_official(weights, folders["pth"])
            del weights
            if "safetensors" in formats:
                convert_folder(folders["pth"], folders["safetensors"])
            for fmt in formats:
                model = load_liveportrait(folders[fmt], fmt=fmt)
                rows += compare_case(compute_stages(model, case), case, case_path.stem, fmt)
                del model
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m playmate.parity liveportrait",
                                     description="LivePortrait golden parity check (see module docstring).")
    parser.add_argument("--cases", type=Path, default=None, help="folder with case_seed*.npz")
    parser.add_argument("--manifest", type=Path, default=None, help="default: CASES/manifest.json")
    parser.add_argument("--weights-generator", type=Path, default=None, help="default: CASES/../golden_weights.py")
    parser.add_argument("--formats", default="pth,safetensors", help="comma list of pth, safetensors")
    parser.add_argument("--keep-weights", type=Path, default=None,
                        help="write the synthetic model folders here (seed<N>/pth, seed<N>/safetensors) and keep them")
    args = parser.parse_args(argv)
    cases = golden_dir("liveportrait", args.cases)
    formats = tuple(f for f in args.formats.split(",") if f)
    if not formats or any(f not in ("pth", "safetensors") for f in formats):
        parser.error("--formats takes pth and/or safetensors")
    try:
        rows = run_parity(cases, args.manifest or cases / "manifest.json",
                          args.weights_generator or cases.parent / "golden_weights.py", formats, args.keep_weights)
    except PlaymateError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    return report(rows, format_table, format_summary, "liveportrait parity")


def write_weights(out_dir, seed, fmt="pth", manifest_path=None, generator_path=None, rule="own", sizes="official"):
    """A complete synthetic model folder (flat official .pth files or safetensors) + SYNTHETIC.txt.

    ``rule``: "own" (the project's own networks, default init; needs nothing beside the repository) or
    "golden" (the golden_weights.py rule of ../shared/golden, the parity cases' weights, official sizes).
    ``sizes`` ("official" or "tiny"): of the "own" networks."""
    if rule == "golden":
        cases = golden_dir("liveportrait")
        manifest = load_manifest(manifest_path or cases / "manifest.json")
        generator = load_golden_weights(generator_path or cases.parent / "golden_weights.py")
        weights = synthetic_weights(generator, manifest, seed)
    elif rule == "own":
        weights = own_weights(seed, sizes)
    else:
        raise PlaymateError("Unknown weight rule %r: use one of %s." % (rule, ", ".join(RULES)))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (write_official if fmt == "pth" else write_safetensors)(weights, out_dir)
    (out_dir / "SYNTHETIC.txt").write_text(SYNTHETIC_NOTE % (seed, RULES[rule] + ("" if rule == "golden" else ", %s sizes" % sizes)))
    return out_dir


def main_write_weights(argv=None):
    parser = argparse.ArgumentParser(prog="python -m playmate.parity write-weights",
                                     description="Write a synthetic LivePortrait model folder (random weights, official layout).")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--format", choices=("pth", "safetensors"), default="pth")
    parser.add_argument("--manifest", type=Path, default=None)
    parser.add_argument("--weights-generator", type=Path, default=None)
    parser.add_argument("--rule", choices=tuple(RULES), default="own",
                        help="own: the project's own networks, default init (default; needs nothing else); "
                             "golden: the golden cases' weight rule (../shared/golden)")
    parser.add_argument("--sizes", choices=("official", "tiny"), default="official",
                        help="network sizes of the own rule: official (default) or tiny (a few channels wide, fast)")
    args = parser.parse_args(argv)
    try:
        out = write_weights(args.out_dir, args.seed, args.format, args.manifest, args.weights_generator, args.rule,
                            args.sizes)
    except PlaymateError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    print("wrote synthetic LivePortrait weights (seed %d, %s, %s rule) to %s" % (args.seed, args.format, args.rule, out))
    return 0
