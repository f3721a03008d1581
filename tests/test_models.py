"""playmate.models: precision chosen where a model runs, and one cache key per model file whichever
front end (CLI, library, nodes) asks for it."""

import numpy as np
import pytest
import torch

from clitools import wav_file
from conftest import ROOT
from nodetools import call

from playmate import cli, models, pipeline
from playmate.errors import InputError
from playmate.face import load_image
from playmate.liveportrait import loader
from playmate.motion.types import Motion

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------ precision
@pytest.mark.parametrize("bf16", [True, False])
def test_compute_precision_rules(monkeypatch, bf16):
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: bf16)
    cpu_auto = "bf16" if bf16 else "fp32"
    assert models.compute_precision("auto", "cuda") == "fp16"
    assert models.compute_precision("auto", torch.device("cuda:1")) == "fp16"
    assert models.compute_precision("auto", "cpu") == cpu_auto
    assert models.compute_precision("fp16", "cpu") == "bf16"       # CPUs have no fast float16 convolutions
    assert models.compute_precision("fp16", "cuda") == "fp16"
    assert models.compute_precision("bf16", "cuda") == "bf16"
    for device in ("cpu", "cuda", "meta"):
        assert models.compute_precision("fp32", device) == "fp32"
    assert models.compute_precision("auto", "meta") == "fp32"
    with pytest.raises(InputError, match="precision must be one of auto, fp32, fp16, bf16"):
        models.compute_precision("half", "cpu")


def test_a_model_resolves_auto_on_the_device_it_runs_on(monkeypatch):
    """"auto" is kept as asked and resolved at every call: moving the weights (ComfyUI loads on the
    offload device and moves to the GPU for use) changes what the next call computes in."""
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: True)
    with torch.device("meta"):
        lp = loader.LivePortrait()
    lp.set_precision("auto")
    assert lp.precision == "auto" and lp.device.type == "meta" and lp.compute_precision == "fp32"
    lp.to_empty(device="cpu")                                     # moved: re-resolved, not fixed at load time
    assert lp.device.type == "cpu" and lp.compute_precision == "bf16"
    assert lp._autocast().fast_dtype == torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_bf16", lambda: False)
    assert lp.compute_precision == "fp32"
    with pytest.raises(InputError, match="precision must be one of"):
        lp.set_precision("int8")


def test_the_node_keeps_auto_and_the_cli_passes_its_precision(test_models, monkeypatch):
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    (handle,) = call("PlaymateLoadLivePortrait", precision="auto")
    lp = handle.use()
    assert lp.precision == "auto" and lp.compute_precision == models.compute_precision("auto", lp.device)
    (handle,) = call("PlaymateLoadLivePortrait", precision="fp16")
    assert handle.use().precision == "fp16" and handle.use() is not lp


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_is_fp16_once_the_weights_are_on_cuda(test_models):
    """The ComfyUI path: loaded on the CPU (the offload device) with "auto", moved to the GPU for use."""
    lp = loader.load_liveportrait(test_models / "liveportrait", device="cpu", precision="auto")
    assert lp.compute_precision == models.compute_precision("auto", "cpu")
    lp.to("cuda")
    assert lp.compute_precision == "fp16"
    seen = []
    lp.spade.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    with torch.inference_mode():
        out = lp.decode(torch.rand(1, 256, 64, 64, device="cuda"))
    assert seen == [torch.float16] and out.dtype == torch.float32 and torch.isfinite(out).all()


# ------------------------------------------- source -> render in half precision
@pytest.fixture(scope="module")
def lp(test_models):
    return models.load_liveportrait(test_models / "liveportrait", precision="fp32")


def nodding(source, n):
    """An absolute MOTION: the source's own pose and expression, pitch changing by 5 degrees a frame."""
    info = source.kp_info
    motion = Motion.still(n, info["exp"][0], info["pitch"][0], info["yaw"][0], info["roll"][0], info["t"][0],
                          info["scale"][0], fps=25.0)
    return motion.replace(pitch=motion.pitch + 5.0 * torch.arange(n, dtype=torch.float32))


@pytest.fixture(scope="module")
def fp32_frames(lp, test_models, astronaut):
    crop, _ = pipeline.crop_source(astronaut, models.face_detector(test_models / "mediapipe"))
    source = pipeline.prepare_source(lp, astronaut, crop)
    motion = nodding(source, 2)
    return crop, motion, np.concatenate([f for _, f in pipeline.render(lp, source, motion, batch_size=2)])


# max |half - fp32| / mean |half - fp32| of the 2 frames (0..1), measured on a 2-core EPYC without native
# bf16 (the tiny synthetic LivePortrait; see the test's printout): fp16 7.2e-3 / 6.8e-4, bf16 5.1e-2 / 5.4e-3.
HALF_BOUNDS = {"fp16": (0.03, 3e-3), "bf16": (0.2, 2e-2)}


@pytest.mark.parametrize("precision", [
    pytest.param("fp16", marks=pytest.mark.emulated),          # a CPU always emulates float16 convolutions
    pytest.param("bf16", marks=() if models.cpu_has_bf16() else pytest.mark.emulated)])   # native on AVX512-BF16
def test_source_to_render_in_half_precision_on_cpu(lp, astronaut, fp32_frames, precision, monkeypatch):
    """The half-precision path end to end (source features, keypoints, warping, decoder) on the CPU.
    fp16 normally runs as bf16 on a CPU; here it runs in float16 for real, the GPU's dtype path."""
    monkeypatch.setattr(loader, "compute_precision", lambda asked, device: asked)
    crop, motion, reference = fp32_frames
    seen = []
    hook = lp.spade.fc.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    lp.set_precision(precision)
    try:
        source = pipeline.prepare_source(lp, astronaut, crop)
        frames = np.concatenate([f for _, f in pipeline.render(lp, source, motion, batch_size=2)])
    finally:
        lp.set_precision("fp32")
        hook.remove()
    assert seen == [torch.float16 if precision == "fp16" else torch.bfloat16]   # the decoder ran in half
    assert source.feature_3d.dtype == source.kp_source.dtype == torch.float32
    assert frames.shape == (2, 512, 512, 3) and frames.dtype == np.float32 and np.isfinite(frames).all()
    assert 0.0 <= frames.min() and frames.max() <= 1.0
    diff = np.abs(frames - reference)
    print("\n%s vs fp32: max |diff| %.2e, mean |diff| %.2e" % (precision, diff.max(), diff.mean()))
    worst, mean = HALF_BOUNDS[precision]
    assert 0.0 < diff.max() <= worst and diff.mean() <= mean


# ------------------------------------------------------------------ the cache
def test_cli_and_nodes_load_each_model_once(test_models, example_speech, tmp_path, monkeypatch, capsys):
    """`python -m playmate animate` (in this process) and then the node chain's loaders: LivePortrait,
    generator, audio encoder and face detector come from the same four cache entries, each loaded once."""
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    monkeypatch.chdir(ROOT)
    models.MODELS.clear()
    models.MODELS.loads.clear()
    waveform, sr = example_speech
    wav = wav_file(tmp_path / "speech.wav", waveform[:, 8000:8000 + sr // 10].numpy(), sr)   # 1 frame at 10 fps
    out = tmp_path / "a.mp4"
    source = ROOT / "example_media" / "astronaut.jpg"
    argv = ["animate", "--source", source, "--audio", wav, "--out", out, "--models", test_models, "--fps", 10,
            "--steps", 2, "--generator", test_models / "playmate" / "playmate_random_init.safetensors"]
    assert cli.main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert out.is_file()
    after_cli = dict(models.MODELS.loads)
    assert sorted(key[0] for key in after_cli) == ["audio_encoder", "face_detector", "generator", "liveportrait"]

    image = torch.from_numpy(load_image(source).astype(np.float32) / 255.0)[None]
    (lp,) = call("PlaymateLoadLivePortrait", precision="auto")
    (gen,) = call("PlaymateLoadMotionGenerator", generator="playmate_random_init.safetensors")
    (encoder,) = call("PlaymateLoadAudioEncoder", encoder="facebook/wav2vec2-base-960h")
    lp.use(), gen.use(), encoder.use()
    call("PlaymateSource", liveportrait=lp, image=image, face_index=0, face_order="largest", crop_scale=2.3,
         crop_shift_x=0.0, crop_shift_y=-0.125)
    assert dict(models.MODELS.loads) == after_cli and set(after_cli.values()) == {1}, dict(models.MODELS.loads)
