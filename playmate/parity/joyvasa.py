"""`python -m playmate.parity joyvasa`: JoyVASA generator vs the golden cases of the reference.

    python -m playmate.parity joyvasa [--cases DIR] [--manifest FILE]
        [--weights-generator FILE] [--derived-buffers FILE] [--pe legacy|fixed|both]

For every ``case_seed*.npz`` in DIR (default: see :mod:`playmate.parity.common`): build the
synthetic weights of the case with ``golden_weights.py``, check them against the
case's sha256 fingerprints, write them in the *released* layout (a pickled
``.pt`` with ``argparse.Namespace`` args and a numpy-1.26-style template
pickle, see :func:`write_release`), load that folder through the real loader
(:func:`playmate.motion.joyvasa.load_joyvasa`, which also converts it to
safetensors), run every stage of the generator on the stored noise draws and compare it with the
golden arrays: one row per array with max |error|, max |error| / max |golden|
and pass/fail against the README's tolerances
(``|a - g| <= atol * max|g| + 1e-4 * |g|``; angles: 5e-3 degrees absolute).
Finally the converted safetensors is loaded again and must give bit-identical
weights and denoiser outputs.  Exit status 1 on any failure.
"""

import argparse
import hashlib
import json
import os
import pathlib
import pickle
import sys
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import PlaymateError
from ..liveportrait.keypoints import rotation_matrix
from ..motion.compose import compose_keypoints
from ..motion.joyvasa import GENERATOR_NAME, TEMPLATE_NAME, load_joyvasa, read_converted
from ..motion.joyvasa.sampler import branch_memory, denoise_steps, guided, schedule_steps
from ..motion.types import Motion
from .common import golden_dir, load_golden_weights, load_manifest, stored_draws

GENERATOR_KEY = "motion_generator/" + GENERATOR_NAME
ANGLE_ATOL_DEG = 5e-3


def tolerance(name):
    """('rel', atol) or ('abs', degrees) for a golden array name (README table)."""
    base = name.split("_", 1)[1] if name.startswith(("legacy_", "fixed_")) else name
    if base.startswith(("denorm_", "drv_")) and base.split("_", 1)[1] in ("pitch", "yaw", "roll"):
        return "abs", ANGLE_ATOL_DEG
    if base == "audio_hubert_conv_w0":
        return "rel", 1e-5
    if base.startswith(("sampler_", "window_motion", "motion_norm", "denorm_", "drv_", "kp_", "motion_")):
        return "rel", 2e-4
    return "rel", 1e-4


def compare(name, actual, golden):
    """One result row: dict(name, max_abs, rel, ok, tol)."""
    a = np.asarray(actual.detach().cpu() if isinstance(actual, torch.Tensor) else actual, np.float64)
    g = np.asarray(golden, np.float64)
    if a.shape != g.shape:
        return {"name": name, "max_abs": float("inf"), "rel": float("inf"), "ok": False,
                "tol": "shape %s != golden %s" % (a.shape, g.shape)}
    err = np.abs(a - g)
    scale = float(np.abs(g).max()) or 1.0
    kind, tol = tolerance(name)
    if kind == "abs":
        ok = bool(np.all(err <= tol))
        tol_text = "abs %.0e deg" % tol
    else:
        ok = bool(np.all(err <= tol * scale + 1e-4 * np.abs(g)))
        tol_text = "atol %.0e" % tol
    ok = ok and bool(np.isfinite(a).all())
    return {"name": name, "max_abs": float(err.max()), "rel": float(err.max() / scale), "ok": ok,
            "tol": tol_text}


def exact_row(name, actual, golden):
    ok = int(actual) == int(golden)
    return {"name": name, "max_abs": abs(int(actual) - int(golden)), "rel": 0.0 if ok else float("inf"),
            "ok": ok, "tol": "exact (%d vs %d)" % (int(actual), int(golden))}


# ------------------------------------------------------------ synthetic release
def synthetic_state(case, manifest, weights_module, fixed):
    """The case's synthetic state dict (name -> ndarray) and the names whose sha256_16 mismatch."""
    entries = manifest["files"][GENERATOR_KEY]["entries"]
    state = weights_module.make_state_dict(entries, int(case["seed"]), fixed=fixed)
    want = dict(zip(case["weight_entry_names"].tolist(), case["weight_entry_sha256_16"].tolist()))
    bad = [n for n, arr in state.items()
           if hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16] != want.get(n)]
    bad += [n for n in want if n not in state]
    return state, bad


def case_template(case):
    return {k[len("template_"):]: np.asarray(case[k]) for k in case.files if k.startswith("template_")}


def write_release(folder, state, args, template, *, legacy_weight_norm=False):
    """Write the released layout: motion_generator/<.pt> and motion_template/<.pkl>.

    The ``.pt`` is ``torch.save({"args": Namespace (data_root a PosixPath), "model":
    OrderedDict, "iter": 20000})``; with ``legacy_weight_norm`` the positional conv
    uses the old ``weight_g``/``weight_v`` key names.  The template is pickled
    (protocol 3) with numpy 1.x's module names, as the release was.
    """
    folder = Path(folder)
    (folder / "motion_generator").mkdir(parents=True, exist_ok=True)
    (folder / "motion_template").mkdir(parents=True, exist_ok=True)
    path_cls = pathlib.PurePosixPath if os.name == "nt" else pathlib.PosixPath
    ns = argparse.Namespace(**{k: (path_cls(v) if k == "data_root" else v) for k, v in args.items()})
    model = OrderedDict()
    for name, arr in state.items():
        if legacy_weight_norm:
            name = name.replace("conv.parametrizations.weight.original0", "conv.weight_g")
            name = name.replace("conv.parametrizations.weight.original1", "conv.weight_v")
        model[name] = torch.from_numpy(np.asarray(arr))
    pt = folder / "motion_generator" / GENERATOR_NAME
    torch.save({"args": ns, "model": model, "iter": 20000}, str(pt))
    pkl = folder / "motion_template" / TEMPLATE_NAME
    data = pickle.dumps({k: np.asarray(v, np.float32) for k, v in template.items()}, protocol=3)
    pkl.write_bytes(data.replace(b"numpy._core.", b"numpy.core."))
    return pt, pkl


def golden_inputs(cases_dir=None, manifest=None, weights_generator=None, derived_buffers=None):
    """(cases folder, manifest, golden_weights module, derived buffers) of the JoyVASA golden data."""
    cases_dir = golden_dir("joyvasa", cases_dir)
    manifest = Path(manifest or cases_dir / "manifest.json")
    weights_generator = Path(weights_generator or cases_dir.parent / "golden_weights.py")
    derived_buffers = Path(derived_buffers or cases_dir / "derived_buffers.npz")
    if not derived_buffers.is_file():
        raise PlaymateError("Derived buffers '%s' not found (pass --derived-buffers FILE)." % derived_buffers)
    return cases_dir, load_manifest(manifest), load_golden_weights(weights_generator), dict(np.load(derived_buffers))


def write_case_release(folder, case_path, manifest, weights_module, fixed, **kw):
    """Synthetic release of one case in ``folder``; returns (case npz, state, sha mismatches)."""
    case = np.load(case_path)
    state, bad = synthetic_state(case, manifest, weights_module, fixed)
    write_release(folder, state, json.loads(str(case["release_args_json"])), case_template(case), **kw)
    return case, state, bad


def case_draws(case):
    """Upstream's draw order for the whole clip: x_T, then per window the 49 step draws."""
    z = case["noise_z"]
    return stored_draws([case["noise_xT"]] + [z[w, j] for w in range(z.shape[0]) for j in range(z.shape[1])])


def golden_source(case):
    return {"kp": torch.from_numpy(case["source_kp"]), "exp": torch.from_numpy(case["source_exp"]),
            "t": torch.from_numpy(case["source_t"]), "scale": torch.from_numpy(case["source_scale"]),
            "pitch": torch.from_numpy(case["source_pitch"]), "yaw": torch.from_numpy(case["source_yaw"]),
            "roll": torch.from_numpy(case["source_roll"])}


# ------------------------------------------------------------------- the stages
def denoiser_rows(gen, case, pe, cfg):
    net, rows = gen.net, []
    den = net.denoising_net
    t = torch.from_numpy
    setups = {
        "den1": (t(case["den1_x"]), t(case["den1_prev_motion"]), t(case["den1_prev_audio"]),
                 int(case["den1_t"]), t(case["audio_features"][0:1])),
        "den2": (t(case["den2_x"]), net.start_motion_feat, net.start_audio_feat, int(case["den2_t"]),
                 t(case["audio_features"][1:2])),
    }
    outs = {}
    with torch.inference_mode():
        for key, (x, prev_m, prev_a, step, feats) in setups.items():
            if pe == "legacy":
                emb = den.step_embedding(torch.tensor([step]))
                rows.append(compare("%s_step_embedding" % key, emb, case["%s_step_embedding" % key]))
            cross = branch_memory(net, feats, prev_a, cfg)
            x0, raw = guided(net, x, step, prev_m, cross, cfg, pe)
            rows.append(compare("%s_%s_out" % (pe, key), raw, case["%s_%s_out" % (pe, key)]))
            rows.append(compare("%s_%s_cfg" % (pe, key), x0, case["%s_%s_cfg" % (pe, key)]))
            if key == "den1":  # the inside of the conditional branch (batch [uncond, cond])
                steps = torch.full((2,), step, dtype=torch.long)
                tokens = den.embed(x.expand(2, -1, -1), prev_m.expand(2, -1, -1), steps, pe)
                inside = {"tokens_in": tokens, "transformer_out": den.transform(tokens, cross)}
                for name in ("tokens_in", "transformer_out"):
                    rows.append(compare("%s_den1_%s" % (pe, name), inside[name][1:2],
                                        case["%s_den1_%s" % (pe, name)]))
            outs[key] = raw
    return rows, outs


def audio_rows(gen, case, lay, padded, windows):
    """Exact layout numbers, HuBERT's stages on window 0 and the features of every window."""
    x, conv, hidden = gen.net.hubert_stages(padded[:lay.window_samples][None])
    return [exact_row("audio_padded_len", lay.padded_len, case["audio_padded_len"]),
            exact_row("n_frames", lay.n_native, case["n_frames"]),
            compare("audio_window_input", x, case["audio_window_input"]),
            compare("audio_hubert_conv_w0", conv, case["audio_hubert_conv_w0"]),
            compare("audio_hubert_hidden_w0", hidden, case["audio_hubert_hidden_w0"]),
            compare("audio_features", torch.cat([f for f, _ in windows]), case["audio_features"])]


def pipeline_rows(gen, case, pe, cfg):
    net, rows = gen.net, []
    audio = torch.from_numpy(case["audio_waveform"])
    timesteps = schedule_steps(net)
    lay = gen.layout(audio.shape[0])
    with torch.no_grad():
        windows = gen.sample(audio, lay, case_draws(case), cfg=cfg, pe=pe, timesteps=timesteps)
        if pe == "legacy":
            rows += audio_rows(gen, case, lay, gen.padded_audio(audio, lay), windows)
        # window 0 once more, step by step, from the same x_T and draws
        x_T = torch.from_numpy(case["noise_xT"])
        traj, raw = {timesteps[0]: x_T}, {}
        for t, s, x, r in denoise_steps(net, windows[0][0], net.start_motion_feat, net.start_audio_feat, x_T,
                                        stored_draws(case["noise_z"][0]), cfg=cfg, pe=pe, timesteps=timesteps):
            traj[s], raw[t] = x, r
    steps = case["sampler_traj_steps"].tolist()
    rows.append(compare(pe + "_sampler_traj_w0", torch.stack([traj[s] for s in steps]), case[pe + "_sampler_traj_w0"]))
    rows.append(compare(pe + "_sampler_raw_first_w0", raw[max(steps)], case[pe + "_sampler_raw_first_w0"]))
    rows.append(compare(pe + "_sampler_raw_last_w0", raw[1], case[pe + "_sampler_raw_last_w0"]))
    rows.append(compare(pe + "_window_motion", torch.cat([x0 for _, x0 in windows]), case[pe + "_window_motion"]))
    norm = gen.native_motion(windows, lay)
    rows.append(compare(pe + "_motion_norm", norm, case[pe + "_motion_norm"]))
    denorm = gen.denormalise(norm)
    drv = gen.smooth(denorm)
    for stage, kp in (("denorm", denorm), ("drv", drv)):
        for field in ("exp", "scale", "t", "pitch", "yaw", "roll"):
            rows.append(compare("%s_%s_%s" % (pe, stage, field), kp[field], case["%s_%s_%s" % (pe, stage, field)]))
        rot = rotation_matrix(kp["pitch"][:, 0], kp["yaw"][:, 0], kp["roll"][:, 0])
        rows.append(compare("%s_%s_R" % (pe, stage), rot, case["%s_%s_R" % (pe, stage)]))
    # keypoints of all native frames with upstream's pipeline settings
    native = Motion(exp=drv["exp"], pitch=drv["pitch"][:, 0], yaw=drv["yaw"][:, 0], roll=drv["roll"][:, 0],
                    t=drv["t"], scale=drv["scale"][:, 0], fps=gen.native_fps, drive="relative")
    source = golden_source(case)
    kp_source, kp_driving = compose_keypoints(source, native, multiplier=1.1, lip_from_driving=True)
    if pe == "legacy":
        rows.append(compare("kp_source", kp_source, case["kp_source"]))
    rows.append(compare(pe + "_kp_driving", kp_driving, case[pe + "_kp_driving"]))
    # the public MOTION: frames aligned with the audio, composed with the generator's hints
    motion = gen.to_motion(drv, lay, gen.native_fps)
    lead, n = lay.lead_in, motion.num_frames
    rows.append(compare(pe + "_motion_exp (MOTION frames %d..%d)" % (lead, lead + n - 1), motion.exp,
                        case[pe + "_drv_exp"][lead:lead + n]))
    _, kp_public = compose_keypoints(source, motion)
    rows.append(compare(pe + "_motion_kp_driving (compose defaults)", kp_public,
                        case[pe + "_kp_driving"][lead:lead + n]))
    return rows


def converted_rows(folder, case, state, den_outs, cfg):
    """The converted safetensors must hold exactly the written release (``state``: the synthetic
    weights, the case's template and args) and reload to bit-identical outputs."""
    rows = []
    converted = Path(folder) / "motion_generator" / Path(GENERATOR_NAME).with_suffix(".safetensors")
    if not converted.is_file():
        return [{"name": "converted safetensors written", "max_abs": float("inf"), "rel": float("inf"),
                 "ok": False, "tol": "missing %s" % converted.name}]
    conv = read_converted(converted)
    template = case_template(case)
    args = json.loads(str(case["release_args_json"]))
    same = (all(conv.args.get(k) == v for k, v in args.items()) and set(state) == set(conv.state)
            and all(np.array_equal(state[k], conv.state[k].numpy()) for k in state)
            and set(template) == set(conv.template)
            and all(np.array_equal(template[k], conv.template[k]) for k in template))
    rows.append({"name": "converted safetensors == release (args, tensors, template)",
                 "max_abs": 0.0 if same else float("inf"), "rel": 0.0 if same else float("inf"), "ok": same,
                 "tol": "bit-identical"})
    gen2 = load_joyvasa(folder)
    from_converted = gen2.origin == str(converted)
    _, outs2 = denoiser_rows(gen2, case, "legacy", cfg)
    diff = max(float((outs2[k] - den_outs[k]).abs().max()) for k in den_outs)
    rows.append({"name": "reload from %s: den1/den2 outputs" % converted.name, "max_abs": diff, "rel": diff,
                 "ok": diff == 0.0 and from_converted,
                 "tol": "bit-identical" + ("" if from_converted else " (NOT loaded from safetensors)")})
    return rows


def run_case(case_path, folder, manifest, weights_module, fixed, pes=("legacy", "fixed")):
    """All rows for one case (writes the synthetic release into ``folder``)."""
    case, state, bad = write_case_release(folder, case_path, manifest, weights_module, fixed)
    rows = [{"name": "synthetic weights sha256_16 (%d entries)" % len(case["weight_entry_names"]),
             "max_abs": float(len(bad)), "rel": 0.0 if not bad else float("inf"), "ok": not bad,
             "tol": "all equal" if not bad else "mismatch: %s" % bad[:3]}]
    gen = load_joyvasa(folder)
    cfg = float(case["cfg_scale"])
    den_outs = None
    for pe in pes:
        den, outs = denoiser_rows(gen, case, pe, cfg)
        den_outs = outs if pe == "legacy" else den_outs
        rows += den + pipeline_rows(gen, case, pe, cfg)
    if den_outs is None:
        den_outs = denoiser_rows(gen, case, "legacy", cfg)[1]
    del gen
    rows += converted_rows(folder, case, state, den_outs, cfg)
    return rows


def print_rows(title, rows, out=None):
    out = out or sys.stdout
    print(title, file=out)
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print("  %-*s  max|err| %.3e  rel %.3e  %-18s %s" % (width, r["name"], r["max_abs"], r["rel"], r["tol"],
                                                             "ok" if r["ok"] else "FAIL"), file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m playmate.parity joyvasa", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=None, help="folder with case_seed*.npz (default: shared/golden/joyvasa, "
                    "the shared folder being $PLAYMATE_SHARED or ../shared)")
    ap.add_argument("--manifest", default=None, help="manifest.json (default: in --cases)")
    ap.add_argument("--weights-generator", default=None, help="golden_weights.py (default: beside --cases)")
    ap.add_argument("--derived-buffers", default=None, help="derived_buffers.npz (default: in --cases)")
    ap.add_argument("--pe", choices=("legacy", "fixed", "both"), default="both")
    ap.add_argument("--work", default=None, help="folder for the synthetic releases (default: a temporary one)")
    args = ap.parse_args(argv)
    try:
        cases_dir, manifest, weights_module, fixed = golden_inputs(args.cases, args.manifest,
                                                                    args.weights_generator, args.derived_buffers)
    except PlaymateError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    cases = sorted(cases_dir.glob("case_seed*.npz"))
    if not cases:
        print("no case_seed*.npz in %s" % cases_dir, file=sys.stderr)
        return 1
    pes = ("legacy", "fixed") if args.pe == "both" else (args.pe,)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="joyvasa-parity-") as tmp:
        for case_path in cases:
            folder = Path(args.work or tmp) / case_path.stem
            rows = run_case(case_path, folder, manifest, weights_module, fixed, pes)
            print_rows("%s (%s)" % (case_path.name, ", ".join(pes)), rows)
            failed += sum(not r["ok"] for r in rows)
    print("joyvasa parity: %s" % ("all ok" if not failed else "%d FAILED" % failed))
    return 1 if failed else 0

