"""Audio: decoding, resampling, ComfyUI AUDIO handling, frame counts, Wav2Vec2 features."""

import math

import numpy as np
import pytest
import torch

from playmate import audio as pa
from playmate.errors import InputError, ModelFileError


def sine(freq, sr, seconds, amp=0.5):
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_frequency(x, sr):
    spec = np.abs(np.fft.rfft(np.asarray(x, dtype=np.float64) * np.hanning(len(x))))
    return np.argmax(spec) * sr / len(x)


# ------------------------------------------------------------------ decoding
def test_load_audio_wav_and_flac(tmp_path):
    import av
    from scipy.io import wavfile
    left, right = sine(440, 44100, 0.5), sine(660, 44100, 0.5, amp=0.25)
    pcm = (np.stack([left, right], axis=1) * 32767).astype(np.int16)
    wavfile.write(tmp_path / "a.wav", 44100, pcm)
    wav, sr = pa.load_audio(tmp_path / "a.wav")
    assert sr == 44100 and wav.shape == (2, 22050) and wav.dtype == torch.float32
    assert torch.allclose(wav[0], torch.from_numpy(left), atol=1e-4)
    assert torch.allclose(wav[1], torch.from_numpy(right), atol=1e-4)

    with av.open(str(tmp_path / "a.flac"), "w") as out:  # a compressed format through PyAV
        stream = out.add_stream("flac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray((sine(300, 16000, 1.0)[None] * 32767).astype(np.int16),
                                           format="s16", layout="mono")
        frame.sample_rate = 16000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    wav, sr = pa.load_audio(tmp_path / "a.flac")
    assert sr == 16000 and wav.shape == (1, 16000)
    assert abs(peak_frequency(wav[0], sr) - 300) < 2


def test_load_audio_errors_name_the_file(tmp_path):
    from scipy.io import wavfile
    with pytest.raises(InputError, match="does not exist"):
        pa.load_audio(tmp_path / "missing.wav")
    bad = tmp_path / "bad.wav"
    bad.write_text("this is not audio")
    with pytest.raises(InputError, match="bad.wav"):
        pa.load_audio(bad)
    wavfile.write(tmp_path / "empty.wav", 16000, np.zeros(0, np.int16))
    with pytest.raises(InputError, match="empty.wav"):
        pa.load_audio(tmp_path / "empty.wav")


def test_load_audio_replaces_a_damaged_packet_by_silence():
    from media import megamind_video
    wav, sr = pa.load_audio(megamind_video())   # its first AC-3 packet does not decode
    assert sr == 48000 and wav.shape == (2, 540672)  # 352 good packets + 1 silent, 1536 samples each
    assert float(wav[:, :1536].abs().max()) == 0.0 and float(wav.abs().max()) > 0.1


# ---------------------------------------------------------------- resampling
@pytest.mark.parametrize("sr_in,freq", [(44100, 440.0), (48000, 1000.0), (8000, 250.0), (22050, 3000.0)])
def test_resample_keeps_frequency_and_level(sr_in, freq):
    x = sine(freq, sr_in, 2.0)
    y = pa.resample(x, sr_in, 16000)
    assert y.shape[-1] == math.ceil(len(x) * 16000 / sr_in)
    assert abs(peak_frequency(y, 16000) - freq) < 1.0
    core = y[2000:-2000].numpy()
    assert abs(np.sqrt((core ** 2).mean()) - 0.5 / np.sqrt(2)) < 0.01 * 0.5


def test_resample_removes_frequencies_above_the_new_nyquist():
    y = pa.resample(sine(10000, 48000, 1.0), 48000, 16000)  # 10 kHz would alias to 6 kHz
    assert np.sqrt((y[1000:-1000].numpy() ** 2).mean()) < 0.01


def test_to_mono_16k():
    x = torch.from_numpy(np.stack([sine(500, 32000, 1.0), -sine(500, 32000, 1.0) * 0]))
    y = pa.to_mono_16k(x, 32000)
    assert y.shape == (16000,)
    assert abs(peak_frequency(y, 16000) - 500) < 1.0


# ------------------------------------------------------------- comfy AUDIO
def test_comfy_audio_stereo_int16_range_and_channels():
    left, right = sine(440, 44100, 1.0), sine(440, 44100, 1.0, amp=0.1)
    wav = torch.from_numpy(np.stack([left, right]))[None]
    ref = pa.comfy_audio_to_mono16k({"waveform": wav, "sample_rate": 44100})
    assert ref.shape == (16000,) and ref.dtype == torch.float32
    assert abs(float(ref.abs().max()) - 0.3) < 0.01  # mean of 0.5 and 0.1 amplitude
    as_int_range = pa.comfy_audio_to_mono16k({"waveform": wav * 32768.0, "sample_rate": 44100})
    assert torch.allclose(as_int_range, ref, atol=1e-6)
    as_int16 = pa.comfy_audio_to_mono16k({"waveform": (wav * 32767).to(torch.int16), "sample_rate": 44100})
    assert torch.allclose(as_int16, ref, atol=1e-3)
    six = pa.comfy_audio_to_mono16k({"waveform": wav[:, :1].expand(2, 6, -1), "sample_rate": 44100})
    assert six.shape == (16000,) and abs(peak_frequency(six, 16000) - 440) < 1.0


def test_comfy_audio_errors_name_the_input():
    good = torch.zeros(1, 1, 1000)
    bad = good.clone()
    bad[0, 0, 10] = float("nan")
    with pytest.raises(InputError, match="'speech'.*NaN"):
        pa.comfy_audio_to_mono16k({"waveform": bad, "sample_rate": 16000}, name="speech")
    with pytest.raises(InputError, match="'audio'.*no audio samples"):
        pa.comfy_audio_to_mono16k({"waveform": torch.zeros(1, 2, 0), "sample_rate": 16000})
    with pytest.raises(InputError, match="not an AUDIO"):
        pa.comfy_audio_to_mono16k(torch.zeros(1, 1, 100))
    with pytest.raises(InputError, match="Sample rate"):
        pa.comfy_audio_to_mono16k({"waveform": good, "sample_rate": 0})


# ------------------------------------------------------------- frame counts
@pytest.mark.parametrize("seconds,fps,frames", [(1.0, 25, 25), (3.37, 30, 101), (2.5, 24, 60), (1.0, 29.97, 30),
                                                (10.0, 29.97, 300), (4.5, 25, 112), (0.02, 25, 0), (0.06, 25, 2)])
def test_num_frames_exact(seconds, fps, frames):
    assert pa.num_frames(duration_s=seconds, fps=fps) == frames
    assert pa.num_frames(int(round(seconds * 16000)), 16000, fps) == frames
    assert pa.num_frames(int(round(seconds * 48000)), 48000, fps) == frames


# ------------------------------------------------------------------ encoder
def tiny_wav2vec2(folder, norm="group", hidden=16, layers=2):
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                            intermediate_size=2 * hidden, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=4, feat_extract_norm=norm)
    Wav2Vec2Model(config).eval().save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def encoder_folder(tmp_path_factory):
    return tiny_wav2vec2(tmp_path_factory.mktemp("enc") / "tiny-w2v")


def speechlike(seconds, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(round(seconds * 16000))
    t = torch.arange(n) / 16000.0
    return 0.3 * torch.randn(n, generator=g) * (0.6 + 0.4 * torch.sin(2 * math.pi * 3 * t))


def test_encoder_frame_counts_and_layers(encoder_folder):
    enc = pa.load_audio_encoder(encoder_folder)
    assert (enc.num_layers, enc.dim) == (2, 16)
    for seconds, fps in [(1.0, 25), (3.37, 30), (2.5, 24), (1.0, 29.97), (0.01, 25)]:
        audio = speechlike(seconds)
        feats = enc.encode(audio, fps)
        assert feats.shape == (pa.num_frames(audio.numel(), 16000, fps), 2, 16)
        assert torch.isfinite(feats).all()
    feats = enc.encode(speechlike(1.0), 25, layers=[0, 2])
    assert feats.shape == (25, 2, 16)
    with pytest.raises(InputError, match="out of range"):
        enc.encode(speechlike(1.0), 25, layers=[3])


def test_encoder_interpolates_50hz_states_to_frame_centres(encoder_folder):
    enc = pa.load_audio_encoder(encoder_folder)
    audio = speechlike(2.0)
    states = enc.hidden_states(audio)                          # [99, 2, 16] at 50 Hz
    feats = enc.encode(audio, 25)                              # [50, 2, 16]
    # frame i (centre (i+0.5)/25 s) lies between 50 Hz frames 2i and 2i+1 (centres (320k+200)/16000 s)
    i = torch.arange(1, 49)
    pos = ((i + 0.5) / 25 * 16000 - 200) / 320
    w = (pos - pos.floor())[:, None, None]
    expect = states[pos.floor().long()] * (1 - w) + states[pos.floor().long() + 1] * w
    assert torch.allclose(feats[1:49], expect, atol=1e-5)


def test_encoder_chunks_match_one_pass(encoder_folder, tmp_path):
    audio = speechlike(7.0, seed=3)
    enc = pa.load_audio_encoder(encoder_folder)
    whole = enc.encode(audio, 25, chunk_s=100)
    chunked = enc.encode(audio, 25, chunk_s=2.0, context_s=1.0)
    assert chunked.shape == whole.shape == (175, 2, 16)
    # the first conv's GroupNorm normalises over each chunk: small differences remain
    assert float((chunked - whole).norm() / whole.norm()) < 0.05
    enc_ln = pa.load_audio_encoder(tiny_wav2vec2(tmp_path / "ln", norm="layer"))
    whole, chunked = enc_ln.encode(audio, 25, chunk_s=100), enc_ln.encode(audio, 25, chunk_s=2.0, context_s=1.0)
    assert float((chunked - whole).norm() / whole.norm()) < 0.005
    reduced = enc_ln.encode(audio, 25, chunk_s=2.0, context_s=1.0, reduce=lambda f: f.mean(dim=(1, 2)))
    assert torch.allclose(reduced, chunked.mean(dim=(1, 2)), atol=1e-6)


def test_encoder_found_in_models_folder_and_missing_message(encoder_folder, tmp_path):
    import shutil
    models = tmp_path / "models"
    shutil.copytree(encoder_folder, models / "audio_encoders" / "someone" / "tiny-w2v")
    enc = pa.load_audio_encoder("someone/tiny-w2v", models_dir=models)
    assert enc.dim == 16 and enc.name == "someone/tiny-w2v"
    with pytest.raises(ModelFileError) as err:
        pa.load_audio_encoder("facebook/wav2vec2-base-960h", models_dir=models)
    msg = str(err.value)
    assert "config.json" in msg and "model.safetensors" in msg
    assert str(models / "audio_encoders" / "facebook" / "wav2vec2-base-960h") in msg
    (models / "audio_encoders" / "someone" / "tiny-w2v" / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match="lacks model.safetensors"):
        pa.load_audio_encoder("someone/tiny-w2v", models_dir=models)


def test_features_from_comfy_encoder_output(encoder_folder):
    enc = pa.load_audio_encoder(encoder_folder)
    audio = speechlike(2.3)
    with torch.no_grad():
        out = enc.model(pa.AudioEncoder._prepare(enc, audio)[None], output_hidden_states=True)
    comfy = {"encoded_audio": out.last_hidden_state, "encoded_audio_all_layers": list(out.hidden_states),
             "audio_samples": audio.numel()}
    for fps in (25, 30):
        feats = pa.features_from_comfy_encoder_output(comfy, fps)
        assert feats.shape == (pa.num_frames(audio.numel(), 16000, fps), 2, 16)
        assert torch.allclose(feats, enc.encode(audio, fps), atol=1e-5)
    with pytest.raises(InputError, match="AUDIO_ENCODER_OUTPUT"):
        pa.features_from_comfy_encoder_output({"encoded_audio": out.last_hidden_state}, 25)
