"""`python -m playmate.parity ditto`: the Ditto generator vs the golden cases of the reference.

    python -m playmate.parity ditto [--cases DIR] [--manifest FILE] [--weights-generator FILE]
                                    [--derived-buffers FILE] [--work DIR]

For every ``case_seed*.npz`` in DIR (default ``$PLAYMATE_SHARED/golden/ditto``, else
``../shared/golden/ditto`` beside the repository): the case's synthetic weights are rebuilt with
``golden_weights.py`` and checked against its sha256 fingerprints, then *written in the release
layout* -- ``ditto_pytorch/models/lmdm_v0.4_hubert.pth`` (``{"model_state_dict": ...}``),
``ditto_pytorch/models/stitch_network.pth`` (LivePortrait's stitching file), the cfg pickle
``ditto_cfg/v0.4_hubert_cfg_pytorch.pkl`` with run d's ``default_kwargs`` (three numpy arrays,
protocol 2, numpy-1 module names) and a plain cfg for runs b / c (protocol 5) -- and loaded
through the real loaders.  Then every stage of the golden README runs on the stored inputs:
the denoiser (both branches, guided x0, predicted noise, three intermediates), and for runs
b, c, d one :meth:`DittoGenerator.run` call each (what ``generate`` runs, on the stored noise;
the case's audio features through a stand-in encoder) giving the condition columns, schedule,
cond frames, window predictions, the motion, the driving values, the public MOTION and the
keypoints of our render path (``compose_keypoints`` and ``pipeline.driving_keypoints`` with
the written stitching network), and run b's window 0 once more step by step
(``Sampler.denoise_steps`` on the same draws) for the step trajectory; finally the audio
windowing with the README's fake encoder.

One row per array: max |err|, max |err| / max |golden| and "x tol" = worst error / allowed
(<= 1 passes), with ``|a - g| <= atol * max|g| + 1e-4 * |g|`` (atol per the README), angles
within 0.05 degrees, integers exactly.  Exit status 1 when any row fails.
"""

import argparse
import hashlib
import json
import pickle
import sys
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import pipeline
from ..errors import PlaymateError
from ..liveportrait import loader as lp_loader
from ..liveportrait.keypoints import headpose_degrees
from ..motion.compose import compose_keypoints
from ..motion.ditto.checkpoint import LMDM_NAME, load_lmdm
from ..motion.ditto.config import CFG_NAME, read_config
from ..motion.ditto.emotion import condition_rows
from ..motion.ditto.generator import DittoGenerator
from ..motion.ditto.hubert import CHUNK_SAMPLES, num_frames as num_feature_frames, online_features, wav2feat
from ..motion.ditto.motion import to_motion
from ..motion.ditto.sampler import Plan, Sampler, alphas_cumprod, guided_x0, predicted_noise
from .common import golden_dir, load_golden_weights, report, stored_draws

LMDM_KEY = "ditto_pytorch/models/" + LMDM_NAME
STITCH_NAME = "stitch_network.pth"
ANGLE_ATOL_DEG = 0.05
RUNS = ("b", "c", "d")


# ------------------------------------------------------------------------------ comparing
def tolerance(name):
    """("rel", atol) | ("deg", degrees) for a golden array name (README table)."""
    base = name.split("_", 1)[1] if name[:2] in ("b_", "c_", "d_") else name
    if base.startswith("drv_") and base[4:] in ("pitch", "yaw", "roll"):
        return "deg", ANGLE_ATOL_DEG
    if base in ("cond_extra", "w2f_feat", "w2f_online_chunk_feat"):
        return "rel", 1e-5
    if base in ("alphas_cumprod", "alpha_next_sqrt", "sigma"):
        return "rel", 1e-4
    if name.startswith("den"):
        return "rel", 1e-3
    return "rel", 5e-3


@dataclass
class Row:
    case: str
    name: str
    max_abs: float
    rel: float       # max |err| / max |golden|
    ratio: float     # worst error / allowed error (<= 1 passes)
    tol: str

    @property
    def ok(self):
        return self.ratio <= 1.0


def compare(case, name, actual, golden, tol_name=None):
    a = np.asarray(actual.detach().cpu() if torch.is_tensor(actual) else actual, np.float64)
    g = np.asarray(golden, np.float64)
    kind, tol = tolerance(tol_name or name)
    text = "abs %g deg" % tol if kind == "deg" else "atol %.0e" % tol
    if a.shape != g.shape:
        return Row(case, name, float("inf"), float("inf"), float("inf"), "shape %s != %s" % (a.shape, g.shape))
    err = np.abs(a - g)
    if not np.isfinite(err).all():
        return Row(case, name, float("inf"), float("inf"), float("inf"), text)
    scale = float(np.abs(g).max()) or 1.0
    ratio = float(err.max()) / tol if kind == "deg" else float((err / (tol * scale + 1e-4 * np.abs(g))).max())
    return Row(case, name, float(err.max()), float(err.max()) / scale, ratio, text)


def exact(case, name, actual, golden):
    a, g = np.asarray(actual), np.asarray(golden)
    same = a.shape == g.shape and bool(np.array_equal(a, g))
    diff = float(np.abs(a.astype(np.float64) - g).max()) if a.shape == g.shape and a.size else (0.0 if same else 1.0)
    return Row(case, name, diff, 0.0 if same else float("inf"), 0.0 if same else float("inf"),
               "exact" if same else "exact (%s vs %s)" % (a.tolist() if a.size < 8 else a.shape,
                                                          g.tolist() if g.size < 8 else g.shape))


# ------------------------------------------------------------------------------ synthetic release
def weight_mismatches(state, case):
    want = dict(zip(case["weight_entry_names"].tolist(), case["weight_entry_sha256_16"].tolist()))
    bad = [n for n, arr in state.items()
           if hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()[:16] != want.get(n)]
    return bad + [n for n in want if n not in state]


def cfg_dict(default_kwargs):
    """The cfg pickle's structure (paths / devices as the release has them; they are ignored)."""
    models = ("insightface_det", "landmark106", "landmark203", "appearance_extractor", "motion_extractor",
              "stitch_network", "warp_network", "decoder", "hubert")
    base = {m + "_cfg": {"model_path": "models/%s.pth" % m, "device": "cuda", "force_ori_type": False}
            for m in models}
    base["landmark478_cfg"] = {"task_path": "aux_models/face_landmarker.task", "device": "cuda"}
    a2m = {"model_path": "models/" + LMDM_NAME, "device": "cuda", "motion_feat_dim": 265, "audio_feat_dim": 1103,
           "seq_frames": 80, "use_emo": True, "use_sc": True, "use_eye_open": True, "use_eye_ball": True,
           "w2f_type": "hubert"}
    return {"base_cfg": base, "audio2motion_cfg": a2m, "default_kwargs": dict(default_kwargs)}


def write_release(folder, lmdm_state, stitch_state, case):
    """The release layout in ``folder``; returns (lmdm path, stitch path, cfg of run d, plain cfg)."""
    folder = Path(folder)
    models = folder / "ditto_pytorch" / "models"
    models.mkdir(parents=True, exist_ok=True)
    lmdm = models / LMDM_NAME
    torch.save({"model_state_dict": OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in lmdm_state.items())},
               str(lmdm))
    stitch = models / STITCH_NAME
    torch.save({outer: OrderedDict((k, torch.from_numpy(np.asarray(v))) for k, v in inner.items())
                for outer, inner in stitch_state.items()}, str(stitch))
    cfg_d = folder / "ditto_cfg" / CFG_NAME
    cfg_d.parent.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.asarray(case["d_" + k]) for k in ("emo_arr", "v_min_max_for_clip", "delta_eye_arr")}
    data = pickle.dumps(cfg_dict({"emo": arrays["emo_arr"], "v_min_max_for_clip": arrays["v_min_max_for_clip"],
                                  "delta_eye_arr": arrays["delta_eye_arr"]}), protocol=2)
    cfg_d.write_bytes(data.replace(b"numpy._core", b"numpy.core"))
    plain = folder / "ditto_cfg_plain" / CFG_NAME
    plain.parent.mkdir(parents=True, exist_ok=True)
    plain.write_bytes(pickle.dumps(cfg_dict({}), protocol=5))
    return lmdm, stitch, cfg_d, plain


def stitching_liveportrait(path):
    """A LivePortrait whose stitching / retargeting MLPs hold ``path``'s weights (read by the real
    loader); its image networks are left uninitialised -- only the keypoint maths runs."""
    groups = lp_loader.read_checkpoint(path, "stitching_retargeting_module")
    with torch.device("meta"):
        lp = lp_loader.LivePortrait()
    lp = lp.to_empty(device="cpu")
    for attr, state in groups.items():
        lp.get_submodule(attr).load_state_dict(state, strict=True)
    return lp.eval().requires_grad_(False)


class StoredFeatures:
    """Stand-in for Ditto's HuBERT: the case's 25 fps features for a clip of the case's length."""

    def __init__(self, features):
        self.array = np.asarray(features, np.float32)

    def features(self, audio_16k):
        if num_feature_frames(len(audio_16k)) != self.array.shape[0]:
            raise PlaymateError("stored features: the clip has %d frames, the case %d."
                                % (num_feature_frames(len(audio_16k)), self.array.shape[0]))
        return self.array


def fake_encoder():
    """The README's fake encoder: enc[j] = chunk[320j : 320j+400] @ B, B[n,d] = cos(pi (d+1)(n+0.5)/400)/20."""
    n, d = np.arange(400)[:, None], np.arange(1024)[None, :]
    basis = np.cos(np.pi * (d + 1) * (n + 0.5) / 400) / 20

    def encode(chunk):
        chunk = np.asarray(chunk, np.float64)
        return np.stack([chunk[320 * j:320 * j + 400] @ basis for j in range(20)]).astype(np.float32)
    return encode


def source_kp_info(case):
    """Our kp_info of the case's source (as prepare_source leaves it: degrees, logits, eye features)."""
    t = lambda k: torch.from_numpy(np.asarray(case[k], np.float32))  # noqa: E731
    info = {a + "_logits": t("src_" + a) for a in ("pitch", "yaw", "roll")}
    info.update({a: headpose_degrees(info[a + "_logits"]) for a in ("pitch", "yaw", "roll")})
    info.update(t=t("src_t"), exp=t("src_exp").reshape(1, 21, 3), scale=t("src_scale").reshape(1),
                kp=t("src_kp").reshape(1, 21, 3), eye_open=t("src_eye_open"), eye_ball=t("src_eye_ball"))
    return info


# ------------------------------------------------------------------------------ stages
def denoiser_rows(net, case, name=""):
    g = lambda k: torch.from_numpy(np.asarray(case[k]))  # noqa: E731
    plan = Plan(alphas_cumprod(), 1)
    x, cf, cond = g("den_x"), g("den_cond_frame"), g("den_cond")
    rows = [compare(name, "alphas_cumprod", plan.alphas, case["alphas_cumprod"])]
    with torch.no_grad():
        for i, step in enumerate(case["den_t"].tolist(), start=1):
            t = torch.tensor([int(step)])
            internals = {}
            u = net(x, cf, None, t)
            c = net(x, cf, cond, t, internals=internals if i == 1 else None)
            x0 = guided_x0(net, x, cf, cond, t, 2.0, 2.0)
            for key, value in (("uncond", u), ("cond", c), ("x_start", x0),
                               ("pred_noise", predicted_noise(plan, x, x0, int(step)))):
                rows.append(compare(name, "den%d_%s" % (i, key), value, case["den%d_%s" % (i, key)]))
            if i == 1:
                for key in ("time_mlp", "cond_encoder_out", "decoder_out"):
                    rows.append(compare(name, "den_" + key, internals[key], case["den_" + key]))
    return rows


def run_stages(gen, case, run):
    """:meth:`DittoGenerator.run` for run b / c / d of the case on its stored noise -> (DittoRun, spec)."""
    spec = json.loads(str(case[run + "_run_json"]))
    kw = dict(spec["setup_kwargs"])
    w = float(spec["guidance_weight"])
    result = gen.run(np.zeros(int(case["audio_n_samples"]), np.float32), source_kp_info(case), case_draws(case, spec),
                     steps=kw.pop("sampling_timesteps"), cfg_audio=w, cfg_emotion=w, emotion=None, options=kw)
    return result, spec


def case_draws(case, spec, windows=None):
    """The stored draws of a run in the release's order: the step draws, then x_T of each window
    (of the first ``windows`` windows)."""
    noise = spec["noise_from"]
    return stored_draws(list(case[noise + "_noise_steps"]) + list(case[noise + "_noise_xT"])[:windows])


def window0_steps(gen, case, spec, result):
    """Window 0 once more, step by step, on the same draws and inputs: [(t, x_t, x0)]."""
    w = float(spec["guidance_weight"])
    sampler = Sampler(gen.net, int(result.options["sampling_timesteps"]), case_draws(case, spec, windows=1), w, w)
    cond, cond_neutral = result.sampled.conditions.window(0, gen.net.sizes.seq_frames)
    return list(sampler.denoise_steps(result.sampled.kp_cond[0], cond, cond_neutral))


def run_rows(gen, case, run, lp, name=""):
    result, spec = run_stages(gen, case, run)
    sampled = result.sampled
    p = run + "_"
    seq = gen.net.sizes.seq_frames
    starts = gen.window_options(result.options).starts(len(sampled.conditions))
    cond_extra = torch.cat([sampled.conditions.window(start, seq)[0][0, :, 1024:] for start in starts])
    rows = [exact(name, p + "windows", sampled.window_pred.shape[0], case[p + "window_pred"].shape[0]),
            exact(name, p + "frames", sampled.rows.shape[0], case[p + "motion"].shape[0]),
            exact(name, p + "ceil(n/16000*25)", num_feature_frames(int(case["audio_n_samples"])),
                  case[p + "motion"].shape[0]),
            compare(name, p + "cond_extra", cond_extra, case[p + "cond_extra"])]
    plan = sampled.plan
    rows.append(exact(name, p + "time_pairs", np.array(plan.pairs, np.int64), case[p + "time_pairs"]))
    for key in ("alpha_next_sqrt", "sigma", "c"):
        rows.append(compare(name, p + key, torch.stack(getattr(plan, key)), case[p + key]))
    rows.append(compare(name, p + "kp_cond", sampled.kp_cond, case[p + "kp_cond"]))
    rows.append(compare(name, p + "window_pred", sampled.window_pred, case[p + "window_pred"]))
    if run == "b":
        steps = window0_steps(gen, case, spec, result)
        rows.append(exact(name, "b_w0_step_t", np.array([t for t, _, _ in steps], np.int64), case["b_w0_step_t"]))
        rows.append(compare(name, "b_w0_step_x", torch.stack([x.cpu() for _, x, _ in steps]), case["b_w0_step_x"]))
        rows.append(compare(name, "b_w0_step_x_start", torch.stack([x0.cpu() for _, _, x0 in steps]),
                            case["b_w0_step_x_start"]))
    rows.append(compare(name, p + "motion", sampled.rows, case[p + "motion"]))
    drv = result.drv
    for key in ("exp", "t", "scale"):
        rows.append(compare(name, p + "drv_" + key, drv[key], case[p + "drv_" + key]))
    for key in ("pitch", "yaw", "roll"):
        rows.append(compare(name, p + "drv_" + key, drv[key][:, None], case[p + "drv_" + key]))
    # keypoints of our render path, all native frames
    full = to_motion(drv)
    info = source_kp_info(case)
    kp_source, kp_nostitch = compose_keypoints(info, full)
    rows.append(compare(name, p + "x_s", kp_source, case[p + "x_s"]))
    rows.append(compare(name, p + "x_d_nostitch", kp_nostitch[:, None], case[p + "x_d_nostitch"]))
    src = pipeline.Source(image=None, crop=None, crop_image=None, feature_3d=None, kp_info=info,
                          kp_source=kp_source, eye_ratio=torch.zeros(1, 2), lip_ratio=torch.zeros(1, 1))
    x_d = pipeline.driving_keypoints(lp, src, full, stitching=True)
    rows.append(compare(name, p + "x_d", x_d[:, None], case[p + "x_d"]))
    # the public MOTION: round(T/16000*25) frames of the same values
    motion = result.motion
    n = motion.num_frames
    rows.append(compare(name, p + "MOTION exp (generate, %d frames)" % n, motion.exp.reshape(n, 63),
                        case[p + "drv_exp"][:n], tol_name=p + "drv_exp"))
    for key in ("pitch", "yaw", "roll"):
        rows.append(compare(name, p + "MOTION %s (generate)" % key, getattr(motion, key)[:, None],
                            case[p + "drv_" + key][:n], tol_name=p + "drv_" + key))
    if run == "c":   # our emotion "happy" is the release's emo = 3
        happy = condition_rows("happy", n)
        rows.append(exact(name, "c emotion 'happy' == release emo 3", happy, condition_rows(None, n, default=3)))
    return rows


def w2f_rows(case, name=""):
    encode = fake_encoder()
    wave = np.asarray(case["w2f_waveform"], np.float32)
    chunk = np.concatenate([np.zeros(3 * 640, np.float32), wave])[:CHUNK_SAMPLES]  # 3 past frames of zeros
    return [compare(name, "w2f_feat", wav2feat(wave, encode), case["w2f_feat"]),
            compare(name, "w2f_online_chunk_feat", online_features(chunk, encode), case["w2f_online_chunk_feat"])]


def run_case(case_path, folder, manifest, weights_module, fixed, lp_manifest):
    """Every row of one case (its synthetic release is written into ``folder``)."""
    case = np.load(case_path)
    name = Path(case_path).stem
    seed = int(case["seed"])
    state = weights_module.make_state_dict(manifest["files"][LMDM_KEY]["entries"], seed, fixed=fixed)
    bad = weight_mismatches(state, case)
    rows = [Row(name, "synthetic weights sha256_16 (%d entries)" % len(state), float(len(bad)),
                0.0 if not bad else float("inf"), 0.0 if not bad else float("inf"),
                "all equal" if not bad else "mismatch: %s" % bad[:3])]
    stitch = weights_module.make_state_dict(lp_manifest["files"]["stitching_retargeting_module.pth"]["entries"], seed)
    lmdm, stitch_path, cfg_d, cfg_plain = write_release(folder, state, stitch, case)
    del state, stitch
    config_d, config_plain = read_config(cfg_d), read_config(cfg_plain)
    net = load_lmdm(lmdm, config_d)
    lp = stitching_liveportrait(stitch_path)
    rows += denoiser_rows(net, case, name)
    for run in RUNS:
        gen = DittoGenerator(net, config_d if run == "d" else config_plain, StoredFeatures(case["aud_feat"]),
                             origin=str(lmdm))
        rows += run_rows(gen, case, run, lp, name)
    return rows + w2f_rows(case, name)


def format_table(rows):
    width = max(len(r.name) for r in rows)
    lines = ["%-14s %-*s %11s %11s %9s  %-16s" % ("case", width, "array", "max|err|", "err/max|g|", "x tol", "tolerance")]
    for r in rows:
        lines.append("%-14s %-*s %11.3e %11.3e %9.3f  %-16s %s" % (r.case, width, r.name, r.max_abs, r.rel, r.ratio,
                                                                 r.tol, "ok" if r.ok else "FAIL"))
    return "\n".join(lines)


def format_summary(rows):
    lines = ["worst per case (x tol):"]
    for case in dict.fromkeys(r.case for r in rows):
        sel = sorted((r for r in rows if r.case == case), key=lambda r: -r.ratio)[:3]
        lines.append("  %s: %s" % (case, ", ".join("%s %.3f" % (r.name, r.ratio) for r in sel)))
    return "\n".join(lines)


def golden_inputs(cases_dir=None, manifest=None, weights_generator=None, derived_buffers=None):
    cases_dir = golden_dir("ditto", cases_dir)
    paths = {"manifest": Path(manifest or cases_dir / "manifest.json"),
             "derived buffers": Path(derived_buffers or cases_dir / "derived_buffers.npz"),
             "LivePortrait manifest": cases_dir.parent / "liveportrait" / "manifest.json"}
    for what, path in paths.items():
        if not path.is_file():
            raise PlaymateError("Ditto parity: the %s '%s' is missing." % (what, path))
    weights = load_golden_weights(weights_generator or cases_dir.parent / "golden_weights.py")
    return (cases_dir, json.loads(paths["manifest"].read_text()), weights, dict(np.load(paths["derived buffers"])),
            json.loads(paths["LivePortrait manifest"].read_text()))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m playmate.parity ditto", description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", default=None, help="folder with case_seed*.npz (default shared/golden/ditto)")
    ap.add_argument("--manifest", default=None, help="manifest.json (default: in --cases)")
    ap.add_argument("--weights-generator", default=None, help="golden_weights.py (default: beside --cases)")
    ap.add_argument("--derived-buffers", default=None, help="derived_buffers.npz (default: in --cases)")
    ap.add_argument("--work", default=None, help="folder for the synthetic releases (default: a temporary one)")
    args = ap.parse_args(argv)
    try:
        cases_dir, manifest, weights, fixed, lp_manifest = golden_inputs(args.cases, args.manifest,
                                                                         args.weights_generator, args.derived_buffers)
        cases = sorted(cases_dir.glob("case_seed*.npz"))
        if not cases:
            raise PlaymateError("No case_seed*.npz in '%s' (pass --cases DIR)." % cases_dir)
        rows = []
        with tempfile.TemporaryDirectory(prefix="ditto-parity-") as tmp:
            for case_path in cases:
                rows += run_case(case_path, Path(args.work or tmp) / case_path.stem, manifest, weights, fixed,
                                 lp_manifest)
    except PlaymateError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    return report(rows, format_table, format_summary, "ditto parity")


if __name__ == "__main__":
    sys.exit(main())
