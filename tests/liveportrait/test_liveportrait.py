"""LivePortrait port: golden parity (both file formats), porting mistakes caught, loader errors.

The parity test runs the parity command itself over every case (``--keep-weights``; the file-format
tests read its converted folders); the unit tests load only the first case's golden weights.
"""

import contextlib
import io
import pickle
import pickletools
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from playmate.errors import InputError, ModelFileError
from playmate.liveportrait import keypoints as kpm
from playmate.parity import liveportrait as parity
from playmate.liveportrait.loader import (LIVEPORTRAIT_FILES, checkpoint_paths, expected_state_dicts,
                                          load_liveportrait, official_subpath, read_checkpoint)
from playmate.liveportrait.warping import sample_volume

ARRAYS_PER_RUN = 48


@pytest.fixture(scope="session")
def cases_dir(golden_dir):
    return golden_dir / "liveportrait"


@pytest.fixture(scope="session")
def parity_run(tmp_path_factory, cases_dir):
    """Run `python -m playmate.parity liveportrait` in-process, keeping the synthetic model folders."""
    work = tmp_path_factory.mktemp("liveportrait")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = parity.main(["--cases", str(cases_dir), "--keep-weights", str(work)])
    return rc, out.getvalue(), work


@pytest.fixture(scope="session")
def case(cases_dir):
    path = sorted(cases_dir.glob("case_seed*.npz"))[0]
    return np.load(path)


@pytest.fixture(scope="session")
def pth_dir(tmp_path_factory, case, cases_dir):
    """The first case's golden weights in the official .pth layout (not the whole parity run)."""
    return parity.write_weights(tmp_path_factory.mktemp("golden_pth") / "liveportrait", int(case["seed"]),
                                manifest_path=cases_dir / "manifest.json", rule="golden")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """The project's own networks at tiny sizes in the official .pth layout (no golden data needed)."""
    return parity.write_weights(tmp_path_factory.mktemp("tiny") / "liveportrait", seed=3, sizes="tiny")


@pytest.fixture(scope="session")
def model(pth_dir):
    return load_liveportrait(pth_dir, fmt="pth")


def golden(case, name):
    return torch.from_numpy(case[name])


def tol_ratio(name, actual, case):
    return parity.compare(name, actual.detach().numpy(), case[name])[2]


# ---- parity --------------------------------------------------------------------------------------

@pytest.mark.slow  # full-size networks, every case, both formats: about 100 s
def test_parity_passes_on_every_case_from_pth_and_safetensors(parity_run, cases_dir):
    rc, table, _ = parity_run
    cases = sorted(p.stem for p in cases_dir.glob("case_seed*.npz"))
    assert len(cases) >= 2
    rows = [line.split() for line in table.splitlines() if line.startswith("case_seed")]
    assert len(rows) == len(cases) * 2 * ARRAYS_PER_RUN, table[-3000:]
    assert {(r[0], r[1]) for r in rows} == {(c, f) for c in cases for f in ("pth", "safetensors")}
    assert all(r[-1] == "ok" for r in rows), [r for r in rows if r[-1] != "ok"]
    assert rc == 0, table[-3000:]
    worst = max(float(r[-2]) for r in rows)
    assert worst < 0.2, "parity holds but with less head-room than measured (worst x tol %.3f)" % worst


def test_compare_follows_the_readme_tolerances():
    g = np.array([1.0, -2.0, 0.0], np.float32)
    assert parity.compare("kp_src", g + 1.99e-5, g)[2] <= 1.0                 # 1e-5 * max|g| + 1e-4 * |g|
    assert parity.compare("kp_src", g + np.array([0, 0, 2.1e-5], np.float32), g)[2] > 1.0
    assert parity.compare("kp_src", g + np.array([1.1e-4, 0, 0], np.float32), g)[2] <= 1.0
    assert parity.compare("W_out", g + 1.9e-4, g)[2] <= 1.0
    assert parity.compare("M_src_yaw", g + 9e-4, g)[2] <= 1.0                  # absolute degrees
    assert parity.compare("M_src_yaw", g + 1.1e-3, g)[2] > 1.0
    img = np.full((4, 4), 0.5, np.float32)
    bump = img.copy()
    bump[0, 0] += 1e-3                                                        # max ok, mean 6e-5 too big
    assert parity.compare("G_out", bump, img)[2] > 1.0
    assert parity.compare("G_out", img + 1e-5, img)[2] <= 1.0
    assert parity.compare("kp_src", g[:2], g)[2] == float("inf")


# ---- typical porting mistakes are caught by >= 10x the tolerance ------------------------------------

def _mistake_feature(model, case, kind):
    src = golden(case, "source_image")
    if kind == "bgr":
        return model.extract_feature_3d(src[:, [2, 1, 0]])
    if kind == "minus_one_to_one":
        return model.extract_feature_3d(src * 2 - 1)
    saved = {k: v.clone() for k, v in model.appearance.state_dict().items()}
    model.appearance.train()  # BatchNorm with batch statistics (this also updates the running ones)
    try:
        return model.extract_feature_3d(src)
    finally:
        model.appearance.eval()
        model.appearance.load_state_dict(saved)


@pytest.mark.parametrize("kind", ["bgr", "minus_one_to_one", "batchnorm_batch_statistics"])
def test_input_and_normalisation_mistakes_are_caught(model, case, kind):
    assert tol_ratio("F_feature_3d", model.extract_feature_3d(golden(case, "source_image")), case) <= 1.0
    assert tol_ratio("F_feature_3d", _mistake_feature(model, case, kind), case) >= 10.0


def test_keypoint_maths_mistakes_are_caught(case):
    kp, exp, t, s = (golden(case, "M_src_" + n) for n in ("kp", "exp", "t", "scale"))
    rot = golden(case, "R_src")
    assert tol_ratio("kp_src", kpm.transform_keypoint(kp, exp, rot, t, s), case) <= 1.0
    assert tol_ratio("kp_src", kpm.transform_keypoint(kp, exp, rot.transpose(1, 2), t, s), case) >= 10.0
    assert tol_ratio("kp_src", kpm.transform_keypoint(kp, exp, rot, t, s, translate_z=True), case) >= 10.0
    angles = golden(case, "rot_angles")
    p, y, r = angles.unbind(1)
    zero = torch.zeros_like(p)
    wrong_order = kpm.rotation_matrix(zero, zero, r) @ kpm.rotation_matrix(zero, y, zero) @ kpm.rotation_matrix(p, zero, zero)
    assert tol_ratio("rot_matrices", kpm.rotation_matrix(p, y, r), case) <= 1.0
    assert tol_ratio("rot_matrices", wrong_order, case) >= 10.0


def test_ratio_inputs_and_stitching_application():
    eyes = kpm.eye_ratio_input(torch.tensor([[0.30, 0.35], [0.2, 0.25]]), torch.tensor([0.0, 0.4]))
    assert torch.equal(eyes, torch.tensor([[0.30, 0.35, 0.0], [0.2, 0.25, 0.4]]))
    assert torch.equal(kpm.eye_ratio_input(torch.tensor([[0.3, 0.35]]), 0.5), torch.tensor([[0.3, 0.35, 0.5]]))
    lips = kpm.lip_ratio_input(torch.tensor([[0.1]]), torch.tensor([0.2, 0.3]))
    assert torch.equal(lips, torch.tensor([[0.1, 0.2], [0.1, 0.3]]))
    kp = torch.zeros(1, 21, 3)
    delta = torch.arange(65.0)[None]
    out = kpm.apply_stitching(kp, delta)
    assert torch.equal(out[0, 1], torch.tensor([3.0 + 63, 4.0 + 64, 5.0]))


def test_swapped_source_and_driving_keypoints_are_caught(model, case):
    kp_src, kp_drv = golden(case, "kp_src"), golden(case, "kp_drv")
    assert tol_ratio("stitch_delta", model.stitching_delta(kp_src, kp_drv), case) <= 1.0
    assert tol_ratio("stitch_delta", model.stitching_delta(kp_drv, kp_src), case) >= 10.0


def test_align_corners_true_in_warping_is_caught(model, case):
    args = golden(case, "F_feature_3d"), golden(case, "kp_src"), golden(case, "kp_drv_stitched")
    model.warping.align_corners = True
    try:
        wrong = model.warp(*args)
    finally:
        model.warping.align_corners = False
    assert tol_ratio("W_deformation", wrong["deformation"], case) >= 10.0
    assert tol_ratio("W_out", wrong["out"], case) >= 10.0


# ---- batching ------------------------------------------------------------------------------------

def test_sample_volume_shared_source_equals_repeated_source():
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(1, 2, 3, 4, 5, generator=gen)
    grids = torch.rand(3, 4, 2, 3, 4, 3, generator=gen) * 2.4 - 1.2
    shared = sample_volume(volume, grids)
    repeated = sample_volume(volume.expand(3, -1, -1, -1, -1).contiguous(), grids)
    assert shared.shape == (3, 4, 2, 2, 3, 4)
    assert torch.equal(shared, repeated)
    one = F.grid_sample(volume, grids[1, 2][None], align_corners=False)[0]
    assert torch.allclose(shared[1, 2], one, atol=1e-6)


def test_warp_with_one_source_for_a_batch_matches_single_frames(model, case):
    """Small volume (32x32 instead of 64x64) to keep it cheap: W is fully convolutional."""
    feature = golden(case, "F_feature_3d")[..., 16:48, 16:48].contiguous()
    kp_src = golden(case, "kp_src")
    kp_drv = torch.cat([golden(case, "kp_drv_stitched"), golden(case, "WD_kp_driving")])
    batch = model.warp(feature.expand(2, -1, -1, -1, -1), kp_src, kp_drv)
    for i in range(2):
        single = model.warp(feature, kp_src, kp_drv[i:i + 1])
        for key in ("out", "occlusion_map", "deformation"):
            ref = single[key][0]
            assert torch.allclose(batch[key][i], ref, atol=1e-5 * float(ref.abs().max())), key


def test_wrong_image_input_is_an_input_error(model):
    with pytest.raises(InputError, match="256x256"):
        model.extract_motion(torch.zeros(1, 3, 128, 128))
    with pytest.raises(InputError, match=r"\[B,3,H,W\]"):
        model.extract_feature_3d(torch.zeros(3, 256, 256))


# ---- precision ----------------------------------------------------------------------------------

def test_bf16_fast_mode_is_close_but_not_exact(model, case):
    """bf16 (the CPU fast mode) stays close to the golden outputs.  On a CPU without native bf16 oneDNN
    emulates it (measured here: M 13 s instead of 1.8 s, the 3-D convolutions of F and W over an hour),
    so there only the motion extractor is checked."""
    from playmate.models import cpu_has_bf16
    native = cpu_has_bf16()
    args = golden(case, "F_feature_3d"), golden(case, "kp_src"), golden(case, "kp_drv_stitched")
    model.set_precision("bf16")
    try:
        outputs = {"M_src_kp": model.extract_motion(golden(case, "source_image"))["kp"]}
        if native:
            outputs["F_feature_3d"] = model.extract_feature_3d(golden(case, "source_image"))
            warped = model.warp(*args)
            outputs.update(W_out=warped["out"], W_deformation=warped["deformation"])
    finally:
        model.set_precision("fp32")
    for name, value in outputs.items():
        assert value.dtype == torch.float32, name
        rel = parity.compare(name, value.numpy(), case[name])[1]
        assert 1e-6 < rel < 5e-2, (name, rel)


# ---- file formats and layouts -----------------------------------------------------------------------

def test_converted_safetensors_use_the_kijai_key_layout(parity_run, case):
    from safetensors import safe_open
    folder = parity_run[2] / ("seed%d" % int(case["seed"])) / "safetensors"
    with safe_open(str(folder / "stitching_retargeting_module.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "retarget_shoulder_module.mlp.0.weight" in keys
    assert "retarget_mouth_module.mlp.6.bias" in keys
    assert "retarget_eye_module.mlp.10.weight" in keys
    assert len(keys) == 28
    with safe_open(str(folder / "spade_generator.safetensors"), "pt") as f:
        assert f.get_tensor("up_1.conv_s.weight_orig").shape == (64, 256, 1, 1)


def test_write_weights_command_gives_the_same_tensors_as_the_converter(parity_run, case, tmp_path):
    from safetensors.torch import load_file
    seed = int(case["seed"])
    assert parity.main_write_weights(["--seed", str(seed), "--format", "safetensors", "--rule", "golden",
                                      str(tmp_path)]) == 0
    assert "NOT the real model" in (tmp_path / "SYNTHETIC.txt").read_text()
    converted = parity_run[2] / ("seed%d" % seed) / "safetensors"
    for stem in ("appearance_feature_extractor", "stitching_retargeting_module"):
        a, b = load_file(str(tmp_path / (stem + ".safetensors"))), load_file(str(converted / (stem + ".safetensors")))
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_convert_command_reports_a_missing_file(tmp_path, capsys):
    from playmate.liveportrait import convert
    assert convert.main([str(tmp_path / "official"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "appearance_feature_extractor.pth" in err and "official" in err
    assert not (tmp_path / "out").exists()


def _link_folder(src, dst, stems=LIVEPORTRAIT_FILES, tree=False):
    for stem in stems:
        target = dst / (official_subpath(stem) if tree else stem + ".pth")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(src / (stem + ".pth"))
    return dst


def test_official_tree_layout_and_format_choice(pth_dir, parity_run, case, tmp_path):
    tree = _link_folder(pth_dir, tmp_path / "tree", tree=True)
    assert checkpoint_paths(tree) == tuple(tree / official_subpath(s) for s in LIVEPORTRAIT_FILES)
    st = parity_run[2] / ("seed%d" % int(case["seed"])) / "safetensors"
    assert all(p.suffix == ".safetensors" for p in checkpoint_paths(st))
    assert checkpoint_paths(tmp_path / "empty")[0].name == "appearance_feature_extractor.safetensors"


def test_stitching_file_extra_entries_are_ignored(tiny_dir, tmp_path):
    data = torch.load(str(tiny_dir / "stitching_retargeting_module.pth"), weights_only=True)
    data["optimizer"] = {"state": torch.zeros(3)}
    data["epoch"] = torch.tensor(7)
    path = tmp_path / "stitching_retargeting_module.pth"
    torch.save(data, str(path))
    groups = read_checkpoint(path, "stitching_retargeting_module")
    assert set(groups) == {"stitching", "lip", "eye"}
    assert torch.equal(groups["eye"]["mlp.10.bias"], data["retarget_eye"]["module.mlp.10.bias"])


# ---- loader errors ---------------------------------------------------------------------------------

def _folder_with(tiny_dir, tmp_path, bad_stem="appearance_feature_extractor"):
    """All files linked from the good folder except ``bad_stem``; returns (folder, path of bad_stem)."""
    folder = _link_folder(tiny_dir, tmp_path / "models", [s for s in LIVEPORTRAIT_FILES if s != bad_stem])
    return folder, folder / (bad_stem + ".pth")


def test_missing_file_names_file_and_folder(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path, "spade_generator")
    with pytest.raises(ModelFileError) as err:
        load_liveportrait(folder)
    assert "spade_generator.pth" in str(err.value) and str(folder) in str(err.value)
    assert "KwaiVGI/LivePortrait" in str(err.value)


def test_truncated_file(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path)
    data = (tiny_dir / path.name).read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="appearance_feature_extractor.pth.*truncated"):
        load_liveportrait(folder)


def test_truncated_safetensors_file(tmp_path):
    from safetensors.torch import save_file
    path = tmp_path / "appearance_feature_extractor.safetensors"
    save_file({"first.conv.weight": torch.zeros(64, 3, 3, 3)}, str(path))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="appearance_feature_extractor.safetensors.*truncated"):
        read_checkpoint(path, "appearance_feature_extractor", expected_state_dicts())


def test_file_of_another_network(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path)
    path.symlink_to(tiny_dir / "stitching_retargeting_module.pth")
    with pytest.raises(ModelFileError) as err:
        load_liveportrait(folder)
    msg = str(err.value)
    assert "appearance_feature_extractor.pth" in msg and "missing keys" in msg and "first.conv.weight" in msg
    assert "looks like the stitching_retargeting_module file" in msg


def test_mismatched_shape(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path)
    state = torch.load(str(tiny_dir / path.name), weights_only=True)
    state["second.weight"] = torch.zeros(64, 32, 3, 3)
    torch.save(state, str(path))
    with pytest.raises(ModelFileError, match=r"appearance_feature_extractor.pth.*wrong shapes.*second.weight \(64, 32, 3, 3\) \(expected \(64, 32, 1, 1\)\)"):
        load_liveportrait(folder)


def test_directory_instead_of_file(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path)
    path.mkdir()
    with pytest.raises(ModelFileError, match="appearance_feature_extractor.pth.*folder"):
        load_liveportrait(folder)


class _Payload:
    """Unpickling this object would create the sentinel file."""

    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (self.sentinel, "w"))


def test_pickle_with_code_is_refused(tiny_dir, tmp_path):
    folder, path = _folder_with(tiny_dir, tmp_path)
    sentinel = tmp_path / "pwned.txt"
    torch.save({"first.conv.weight": _Payload(str(sentinel))}, str(path))
    # the payload really is in the file: open(sentinel, "w") called through REDUCE
    with zipfile.ZipFile(path) as zf:
        raw = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(raw)]
    assert ("GLOBAL", "io open") in ops and ("BINUNICODE", str(sentinel)) in ops and ("REDUCE", None) in ops
    with pytest.raises(ModelFileError, match="Refused to load .*appearance_feature_extractor.pth"):
        load_liveportrait(folder)
    assert not sentinel.exists()
    # a plain (non-zip) pickle is refused the same way
    with open(path, "wb") as f:
        pickle.dump({"first.conv.weight": _Payload(str(sentinel))}, f, protocol=2)
    with pytest.raises(ModelFileError, match="Refused|Cannot read"):
        load_liveportrait(folder)
    assert not sentinel.exists()


# ---- sizes read from the tensors -------------------------------------------------------------------

@pytest.mark.parametrize("preset", ["official", "tiny"])
def test_every_size_is_read_back_from_the_networks_tensors(preset):
    from playmate.liveportrait import sizes
    expected = expected_state_dicts(preset)
    assert {attr: sizes.infer(attr, expected[attr]) for attr in sizes.OFFICIAL} == sizes.PRESETS[preset]
    assert sizes.mismatches(sizes.PRESETS[preset]) == []
    n_official = sum(v.numel() for state in expected_state_dicts("official").values() for v in state.values())
    n = sum(v.numel() for state in expected.values() for v in state.values())
    assert n == n_official or n < n_official / 100  # tiny: under 1 % of the release's parameters


def test_a_tiny_folder_loads_through_the_same_loader_and_keeps_the_interfaces(tiny_dir):
    lp = load_liveportrait(tiny_dir)
    assert lp.appearance.reshape_channel == 4 and len(lp.spade.middle_names) == 1
    image = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        feature = lp.extract_feature_3d(image)
        motion = lp.extract_motion(image)
        out = lp.warp_decode(feature, motion["kp"], motion["kp"] + 0.02)
    assert feature.shape == (2, 4, 16, 64, 64) and motion["kp"].shape == (2, 21, 3)
    assert out["out"].shape == (2, 3, 512, 512) and out["deformation"].shape == (2, 16, 64, 64, 3)
    assert 0 < float(out["out"].min()) and float(out["out"].max()) < 1 and float(out["out"].std()) > 1e-3


def test_files_of_two_model_sizes_are_refused_naming_both(tiny_dir, tmp_path):
    from playmate.liveportrait.spade import SPADEDecoder
    folder, path = _folder_with(tiny_dir, tmp_path, "spade_generator")
    torch.save(SPADEDecoder(label_channels=32, out_channels=8, hidden=8, num_middle=1).state_dict(), str(path))
    with pytest.raises(ModelFileError) as err:
        load_liveportrait(folder)
    msg = str(err.value)
    assert "'warping_module.pth'" in msg and "'spade_generator.pth'" in msg
    assert "warped feature channels 16 vs 32" in msg and "one release" in msg
