"""Running the command line the way users do, for the CLI tests."""

import os
import subprocess
import sys

import numpy as np

from conftest import ROOT


def wav_file(path, waveform, rate=16000):
    """``waveform`` [C,T] (or [T]) float written as a float32 wav file; returns ``path``."""
    from scipy.io import wavfile
    wavfile.write(str(path), rate, np.asarray(waveform, np.float32).T)
    return path


def run_cli(*argv, timeout=600):
    """``python -m playmate ARGV`` in a fresh interpreter, offline, from the repository root."""
    env = dict(os.environ, PLAYMATE_OFFLINE="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "playmate", *map(str, argv)], cwd=ROOT, capture_output=True,
                          text=True, env=env, timeout=timeout)
