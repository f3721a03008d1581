"""Ditto's inputs and files: audio windowing (golden), the HuBERT ONNX path, locating / fetching the
release files, and Ditto's renderer files read by the LivePortrait loader."""

import math

import numpy as np
import pytest
import torch

from playmate import hub
from playmate.errors import InputError, ModelFileError
from playmate.liveportrait.loader import (DITTO_NAMES, LIVEPORTRAIT_FILES, checkpoint_paths, expected_state_dicts,
                                          load_liveportrait, read_checkpoint)
from playmate.motion.ditto import files as dfiles
from playmate.motion.ditto.hubert import (CHUNK_SAMPLES, DittoAudio, HubertOnnx, num_frames, online_features,
                                          wav2feat)
from playmate.parity.ditto_models import write_ditto_renderer, write_test_hubert

pytestmark = pytest.mark.usefixtures("one_thread")


# ---- audio windowing against the golden cases -------------------------------------------------------

def documented_fake_encoder():
    """README stage (1): enc[j] = chunk[320j : 320j+400] @ B, B[n,d] = cos(pi (d+1)(n+0.5)/400)/20."""
    n = np.arange(400, dtype=np.float64)[:, None]
    d = np.arange(1024, dtype=np.float64)[None]
    basis = np.cos(np.pi * (d + 1) * (n + 0.5) / 400) / 20

    def encode(chunk):
        chunk = np.asarray(chunk, dtype=np.float64)
        assert chunk.shape == (CHUNK_SAMPLES,)
        return np.stack([chunk[320 * j: 320 * j + 400] @ basis for j in range(20)]).astype(np.float32)
    return encode


def within(actual, golden, atol):
    scale = np.abs(golden).max()
    return np.all(np.abs(actual - golden) <= atol * scale + 1e-4 * np.abs(golden))


def ditto_cases(golden_dir):
    cases = sorted((golden_dir / "ditto").glob("case_seed*.npz"))
    assert cases, "no Ditto golden cases in %s" % (golden_dir / "ditto")
    return [np.load(path) for path in cases]


def test_wav2feat_reproduces_the_golden_windowing(golden_dir):
    encode = documented_fake_encoder()
    for case in ditto_cases(golden_dir):
        wave = case["w2f_waveform"]
        feat = wav2feat(wave, encode)
        assert feat.dtype == np.float32 and feat.shape == case["w2f_feat"].shape == (num_frames(len(wave)), 1024)
        assert within(feat, case["w2f_feat"], 1e-5)
        # the first streaming chunk: 3 past frames of silence (1920 zeros), then the audio
        chunk = np.concatenate([np.zeros(1920, np.float32), wave[:CHUNK_SAMPLES - 1920]])
        online = online_features(chunk, encode)
        assert online.shape == (5, 1024) and within(online, case["w2f_online_chunk_feat"], 1e-5)
        assert num_frames(int(case["audio_n_samples"])) == 110
        # a one-sample shift of the audio is far outside the tolerance: the test sees the offsets
        assert not within(wav2feat(np.concatenate([[0.0], wave[:-1]]), encode), case["w2f_feat"], 1e-3)


def test_frame_count_and_chunk_starts_follow_the_float64_rule():
    assert [num_frames(n) for n in (1, 640, 641, 30000, 70000, 70400)] == [1, 1, 2, 47, 110, 111]
    n = 1620 * 640
    audio = np.arange(1, n + 1, dtype=np.float32)   # sample k holds k + 1: a chunk's first value gives its start
    starts = []

    def encode(chunk):
        starts.append(int(chunk[0]) + 2000 - 1 if chunk[0] > 0 else 0)
        return np.zeros((20, 1024), np.float32)
    feat = wav2feat(audio, encode)
    assert feat.shape == (1620, 1024)
    expected = [int(i * 0.04 * 16000) for i in range(0, 1620, 5)]
    assert starts == expected and starts[1615 // 5] == 640 * 1615 - 1


def test_bad_audio_and_bad_encoder_output():
    encode = documented_fake_encoder()
    with pytest.raises(InputError, match="mono"):
        wav2feat(np.zeros((2, 8000), np.float32), encode)
    with pytest.raises(InputError, match="NaN"):
        wav2feat(np.full(8000, np.nan, np.float32), encode)
    with pytest.raises(InputError, match="no samples"):
        wav2feat(np.zeros(0, np.float32), encode)
    with pytest.raises(InputError, match="6480"):
        online_features(np.zeros(6400, np.float32), encode)
    with pytest.raises(ModelFileError, match=r"\(10, 1024\)"):
        wav2feat(np.zeros(8000, np.float32), lambda chunk: np.zeros((10, 1024), np.float32))


# ---- the ONNX encoder path (synthetic graph, real onnxruntime) --------------------------------------

def numpy_test_graph(path):
    """The synthetic graph's maths recomputed in float64 from the initialisers stored in the file."""
    import onnx
    from onnx import numpy_helper
    init = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in onnx.load(str(path)).graph.initializer}
    w, b = init["frame_weight"][:, 0, :], init["frame_bias"]

    def encode(chunk):
        frames = np.stack([np.asarray(chunk, np.float64)[320 * j: 320 * j + 400] for j in range(20)])
        return (np.tanh(frames @ w.T + b) @ init["projection"] + init["projection_bias"]).astype(np.float32)
    return encode


@pytest.fixture(scope="module")
def hubert_file(tmp_path_factory):
    return write_test_hubert(tmp_path_factory.mktemp("hubert") / "hubert_streaming_fix_kv.onnx")


def test_test_graph_is_small_and_has_the_release_signature(hubert_file):
    assert hubert_file.stat().st_size < 2 * 1024 * 1024
    enc = HubertOnnx(hubert_file, device="cpu")
    assert enc.providers == ["CPUExecutionProvider"]
    out = enc.encode(np.random.default_rng(0).standard_normal(CHUNK_SAMPLES).astype(np.float32))
    assert out.shape == (20, 1024) and out.dtype == np.float32


def test_ditto_audio_runs_the_onnx_graph(hubert_file):
    audio = DittoAudio.load(hubert_file, device="cpu")
    reference = numpy_test_graph(hubert_file)
    rng = np.random.default_rng(1)
    chunk = (0.3 * rng.standard_normal(CHUNK_SAMPLES)).astype(np.float32)
    got, want = audio.encoder.encode(chunk), reference(chunk)
    assert np.abs(got - want).max() <= 1e-5 * np.abs(want).max()
    for n in (1, 639, 641, 16000, 30000):
        wave = (0.3 * rng.standard_normal(n)).astype(np.float32)
        feat = audio.features(torch.from_numpy(wave))
        assert feat.dtype == np.float32 and feat.shape == (math.ceil(n / 640), 1024)
        want = wav2feat(wave, reference)
        assert np.abs(feat - want).max() <= 1e-5 * np.abs(want).max() + 1e-6
    assert np.abs(audio.features(wave) - audio.features(wave[::-1].copy())).max() > 0.1  # it does depend on the audio


def _graph_file(path, input_name="input_values", input_shape=(1, 6480), output_name="encoding_out",
                output_shape=(20, 1024)):
    import onnx
    from onnx import TensorProto, helper
    graph = helper.make_graph(
        [helper.make_node("Reshape", [input_name, "shape"], [output_name])], "wrong",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, list(input_shape))],
        [helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(output_shape))],
        initializer=[helper.make_tensor("shape", TensorProto.INT64, [2], list(output_shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.write_bytes(model.SerializeToString())
    return path


@pytest.mark.parametrize("kwargs, message", [
    (dict(input_name="audio"), "inputs \\['audio'\\]"),
    (dict(input_shape=(1, 16000), output_shape=(25, 640)), "input 'input_values'.*expected float32 \\[1, 6480\\]"),
    (dict(output_name="last_hidden_state"), "outputs \\['last_hidden_state'\\]"),
    (dict(output_shape=(81, 80)), "output 'encoding_out' has shape \\[81, 80\\]"),
])
def test_a_graph_of_another_model_is_refused(tmp_path, kwargs, message):
    path = _graph_file(tmp_path / "encoder.onnx", **kwargs)
    with pytest.raises(ModelFileError, match="encoder.onnx' is not Ditto's streaming HuBERT encoder.*" + message):
        HubertOnnx(path)


def test_a_truncated_graph_is_refused(hubert_file, tmp_path):
    path = tmp_path / "hubert_streaming_fix_kv.onnx"
    path.write_bytes(hubert_file.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match="hubert_streaming_fix_kv.onnx.*truncated"):
        HubertOnnx(path)


# ---- locating and fetching the release files ------------------------------------------------------

def _touch(root, *rels):
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_offline_one_message_lists_every_missing_file(tmp_path):
    root = tmp_path / "ditto"
    with pytest.raises(ModelFileError) as err:
        dfiles.locate(root)
    msg = str(err.value)
    assert msg.startswith("Missing 3 Ditto model files")
    for rel in (dfiles.CFG, dfiles.LMDM, dfiles.HUBERT):
        folder, name = (root / rel).parent, (root / rel).name
        assert "'%s' in the folder '%s' (from https://huggingface.co/digital-avatar/ditto-talkinghead/resolve/main/%s)" \
            % (name, folder, rel) in msg
    _touch(root, dfiles.CFG, dfiles.HUBERT)
    with pytest.raises(ModelFileError) as err:
        dfiles.locate(root)
    msg = str(err.value)
    assert "lmdm_v0.4_hubert.pth" in msg and str(root / "ditto_pytorch" / "models") in msg
    assert "v0.4_hubert_cfg_pytorch.pkl" not in msg and "hubert_streaming_fix_kv.onnx" not in msg
    with pytest.raises(ModelFileError) as err:
        dfiles.locate(root, renderer=True)
    msg = str(err.value)
    assert msg.startswith("Missing 6 Ditto model files")
    assert all(name in msg for name in DITTO_NAMES.values())


def test_root_ditto_pytorch_and_lmdm_path_resolve_alike(tmp_path):
    root = tmp_path / "ditto"
    _touch(root, dfiles.CFG, dfiles.LMDM, dfiles.HUBERT)
    want = dfiles.DittoFiles(root=root, cfg=root / dfiles.CFG, lmdm=root / dfiles.LMDM, hubert=root / dfiles.HUBERT)
    for given in (root, root / "ditto_pytorch", root / "ditto_pytorch" / "models", root / dfiles.LMDM):
        assert dfiles.locate(given) == want, given
    assert dfiles.locate(root).renderer is None
    _touch(root, *dfiles.RENDERER)
    assert dfiles.locate(root / dfiles.LMDM, renderer=True).renderer == root / "ditto_pytorch" / "models"


def test_flat_folder_extra_roots_and_a_renamed_lmdm(tmp_path):
    flat, extra = tmp_path / "flat", tmp_path / "extra"
    _touch(flat, "v0.4_hubert_cfg_pytorch.pkl", "my_lmdm.pth")
    _touch(extra, dfiles.HUBERT)
    found = dfiles.locate(flat / "my_lmdm.pth", extra_roots=[tmp_path / "nowhere", extra / "ditto_pytorch"])
    assert found == dfiles.DittoFiles(root=flat, cfg=flat / "v0.4_hubert_cfg_pytorch.pkl", lmdm=flat / "my_lmdm.pth",
                                      hubert=extra / dfiles.HUBERT)
    with pytest.raises(ModelFileError, match="does not exist"):
        dfiles.locate(flat / "missing.pth")
    with pytest.raises(ModelFileError, match="not Ditto's motion model"):
        dfiles.locate(flat / "v0.4_hubert_cfg_pytorch.pkl")


def test_online_downloads_each_missing_file_and_stops_at_the_first_failure(tmp_path, monkeypatch):
    import huggingface_hub
    calls = []
    cache = tmp_path / "cache"
    cache.mkdir()

    def fake_download(repo_id, filename, revision):
        calls.append((repo_id, filename, revision))
        blob = cache / filename.replace("/", "_")
        blob.write_bytes(filename.encode())
        return str(blob)

    def failing_download(repo_id, filename, revision):
        calls.append((repo_id, filename, revision))
        raise OSError("connection refused")
    monkeypatch.setattr(hub, "offline", lambda: False)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    root = tmp_path / "ditto"
    _touch(root, dfiles.CFG)
    found = dfiles.locate(root)
    assert calls == [("digital-avatar/ditto-talkinghead", rel, "main") for rel in (dfiles.HUBERT, dfiles.LMDM)]
    assert found.lmdm == root / dfiles.LMDM and found.lmdm.read_bytes() == dfiles.LMDM.encode()
    assert found.hubert.read_bytes() == dfiles.HUBERT.encode()

    calls.clear()
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", failing_download)
    other = tmp_path / "other"
    with pytest.raises(ModelFileError) as err:
        dfiles.locate(other)
    assert len(calls) == 1  # no retry storm: the first failure reports every file still missing
    msg = str(err.value)
    assert msg.startswith("Missing 3 Ditto model files") and msg.endswith("connection refused")
    assert not any(p.is_file() for p in other.rglob("*"))


# ---- Ditto's renderer files through the LivePortrait loader ---------------------------------------

@pytest.fixture(scope="module")
def renderer_folders(tmp_path_factory):
    """(LivePortrait flat folder, Ditto root) holding the same synthetic weights (seed 1, tiny sizes)."""
    from playmate.parity.liveportrait import write_weights
    work = tmp_path_factory.mktemp("renderer")
    lp = write_weights(work / "liveportrait", 1, sizes="tiny")
    ditto_root = work / "ditto"
    write_ditto_renderer(lp, ditto_root / "ditto_pytorch" / "models")
    return lp, ditto_root


def test_ditto_renderer_loads_the_same_networks(renderer_folders):
    lp_folder, ditto_root = renderer_folders
    models = ditto_root / "ditto_pytorch" / "models"
    assert checkpoint_paths(models) == tuple(models / DITTO_NAMES[s] for s in LIVEPORTRAIT_FILES)
    assert checkpoint_paths(ditto_root) == checkpoint_paths(models)
    assert checkpoint_paths(lp_folder)[1] == lp_folder / "motion_extractor.pth"  # LivePortrait's folder is unchanged
    lp, ditto = load_liveportrait(lp_folder), load_liveportrait(ditto_root)
    assert ditto.eye is None and ditto.lip is None
    for attr in ("appearance", "motion", "warping", "spade", "stitching"):
        a, b = lp.get_submodule(attr).state_dict(), ditto.get_submodule(attr).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), attr
    image = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    assert torch.equal(lp.extract_feature_3d(image), ditto.extract_feature_3d(image))
    m_lp, m_ditto = lp.extract_motion(image), ditto.extract_motion(image)
    assert all(torch.equal(m_lp[k], m_ditto[k]) for k in m_lp)
    kp_drv = m_lp["kp"] + 0.05 * torch.randn(1, 21, 3, generator=torch.Generator().manual_seed(1))
    stitched = ditto.stitch(m_lp["kp"], kp_drv)
    assert torch.equal(lp.stitch(m_lp["kp"], kp_drv), stitched) and not torch.equal(stitched, kp_drv)
    with pytest.raises(InputError, match="no eye retargeting.*LivePortrait's own model files"):
        ditto.retarget_eye(m_lp["kp"], torch.tensor([[0.3, 0.3, 0.4]]))
    with pytest.raises(InputError, match="no lip retargeting"):
        ditto.retarget_lip(m_lp["kp"], torch.tensor([[0.3, 0.4]]))
    assert lp.retarget_eye(m_lp["kp"], torch.tensor([[0.3, 0.3, 0.4]])).shape == (1, 21, 3)


def test_only_dittos_stitch_file_may_lack_the_retargeting_mlps(renderer_folders, tmp_path):
    lp_folder, ditto_root = renderer_folders
    partial = ditto_root / "ditto_pytorch" / "models" / "stitch_network.pth"
    expected = expected_state_dicts()
    assert set(read_checkpoint(partial, "stitching_retargeting_module", expected)) == {"stitching"}
    renamed = tmp_path / "stitching_retargeting_module.pth"
    renamed.write_bytes(partial.read_bytes())
    with pytest.raises(ModelFileError, match="no 'retarget_mouth' weights"):
        read_checkpoint(renamed, "stitching_retargeting_module", expected)
    full = tmp_path / "stitch_network.pth"  # a Ditto stitch file with all three groups keeps eye / lip
    full.write_bytes((lp_folder / "stitching_retargeting_module.pth").read_bytes())
    assert set(read_checkpoint(full, "stitching_retargeting_module", expected)) == {"stitching", "lip", "eye"}


def test_a_partial_ditto_renderer_lists_its_missing_files_and_is_not_converted(renderer_folders, tmp_path):
    from playmate.liveportrait.convert import convert_folder
    _, ditto_root = renderer_folders
    with pytest.raises(ModelFileError, match="stitch_network.pth' holds only the stitching MLP"):
        convert_folder(ditto_root / "ditto_pytorch" / "models", tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before writing anything
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("appearance_extractor.pth", "warp_network.pth", "stitch_network.pth"):
        (folder / name).symlink_to(ditto_root / "ditto_pytorch" / "models" / name)
    with pytest.raises(ModelFileError, match="motion_extractor.pth.*digital-avatar/ditto-talkinghead"):
        load_liveportrait(folder)
