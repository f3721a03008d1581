"""Ditto golden parity (shared/golden/ditto): every case passes, and typical porting mistakes fail it.

The mistakes are injected into the real stage functions (monkeypatch) and the same comparison
the parity command prints must then report a failure.
"""

import numpy as np
import pytest
import torch

from playmate.motion.ditto import emotion as demo
from playmate.motion.ditto import network, windows
from playmate.parity import ditto as parity
from playmate.motion.ditto.checkpoint import load_lmdm
from playmate.motion.ditto.config import read_config
from playmate.motion.ditto.generator import DittoGenerator

pytestmark = [pytest.mark.usefixtures("one_thread", "golden_dir")]


@pytest.fixture(scope="module")
def seed1(golden_dir, tmp_path_factory):
    """The synthetic release of case_seed1 written and loaded through the real loaders."""
    cases_dir, manifest, weights, fixed, lp_manifest = parity.golden_inputs(golden_dir / "ditto")
    case = np.load(cases_dir / "case_seed1.npz")
    state = weights.make_state_dict(manifest["files"][parity.LMDM_KEY]["entries"], int(case["seed"]), fixed=fixed)
    assert not parity.weight_mismatches(state, case)
    stitch = weights.make_state_dict(lp_manifest["files"]["stitching_retargeting_module.pth"]["entries"],
                                     int(case["seed"]))
    lmdm, stitch_path, cfg_d, cfg_plain = parity.write_release(tmp_path_factory.mktemp("ditto1"), state, stitch, case)
    net = load_lmdm(lmdm, read_config(cfg_d))
    gen = DittoGenerator(net, read_config(cfg_plain), parity.StoredFeatures(case["aud_feat"]), origin=str(lmdm))
    return case, net, gen, parity.stitching_liveportrait(stitch_path)


def failed(rows, name):
    (row,) = [r for r in rows if r.name == name]
    return not row.ok


@pytest.mark.slow
def test_golden_parity_all_cases(golden_dir, capsys):
    rc = parity.main(["--cases", str(golden_dir / "ditto")])
    out = capsys.readouterr().out
    assert rc == 0 and "FAIL" not in out, out
    n_cases = len(list((golden_dir / "ditto").glob("case_seed*.npz")))
    assert n_cases >= 2 and out.count(" d_x_d ") == n_cases and out.count(" den1_x_start ") == n_cases, out
    assert "%d arrays compared, all ok" % (91 * n_cases) in out, out


def half_split(y):
    a, b = y.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


def test_half_split_rotary_fails_the_denoiser_rows(seed1, monkeypatch):
    case, net, _, _ = seed1
    assert not any(failed(parity.denoiser_rows(net, case), n) for n in ("den1_x_start", "den2_x_start"))
    monkeypatch.setattr(network, "rotate_half", half_split)
    rows = parity.denoiser_rows(net, case)
    assert failed(rows, "den1_x_start") and failed(rows, "den1_cond") and not failed(rows, "den_time_mlp")
    (row,) = [r for r in rows if r.name == "den1_x_start"]
    assert row.rel > 0.1                                     # README: 0.33


def cond_extra(case, emotion_rows):
    src = parity.source_kp_info(case)
    cond = windows.Conditions(case["aud_feat"], emotion_rows, src["eye_open"], src["eye_ball"], src["kp"],
                              demo.NEUTRAL)
    return torch.cat([cond.window(start, 80)[0][0, :, 1024:] for start in (0, 70)])


def test_plain_one_hot_emotion_fails_cond_extra(seed1):
    case = seed1[0]
    rows = demo.condition_rows(None, 110, default=4)
    assert parity.compare("", "b_cond_extra", cond_extra(case, rows), case["b_cond_extra"]).ok
    one_hot = np.zeros((110, 8), np.float32)
    one_hot[:, 4] = 1
    row = parity.compare("", "b_cond_extra", cond_extra(case, one_hot), case["b_cond_extra"])
    assert not row.ok and row.rel > 1e-3                     # README: 2.4e-3 >> 1e-5


def test_off_by_one_kp_cond_index_fails_the_run(seed1, monkeypatch):
    case, _, gen, lp = seed1
    right = windows.next_kp_cond

    def off_by_one(res, length, opts, source_vec, windows_done):
        return right(res, length + 1, opts, source_vec, windows_done)   # row len - F instead of len - F - 1

    monkeypatch.setattr(windows, "next_kp_cond", off_by_one)
    rows = parity.run_rows(gen, case, "b", lp)
    assert failed(rows, "b_kp_cond") and failed(rows, "b_drv_pitch") and failed(rows, "b_motion")
    assert not failed(rows, "b_cond_extra") and not failed(rows, "b_time_pairs")
