"""`python -m playmate.parity <command>`: golden parity checks and synthetic model folders.

    liveportrait       LivePortrait networks vs ../shared/golden/liveportrait (issue: foundation)
    joyvasa            JoyVASA motion generator vs ../shared/golden/joyvasa
    ditto              Ditto motion generator (LMDM) vs ../shared/golden/ditto
    write-weights      a complete synthetic LivePortrait folder in the official layout
    write-test-models  a complete synthetic models folder (LivePortrait, generator, wav2vec2, landmarker)

Each command lives next to the code it checks; this module only dispatches.
"""

import importlib
import sys
from pathlib import Path

DEFAULT_SHARED = Path(__file__).resolve().parents[1].parent / "shared"

COMMANDS = {
    "liveportrait": "playmate.liveportrait.parity:main",
    "write-weights": "playmate.liveportrait.parity:main_write_weights",
    "joyvasa": "playmate.motion.joyvasa_parity:main",
    "ditto": "playmate.motion.ditto.parity:main",
    "write-test-models": "playmate.testmodels:main",
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[argv[0]].split(":")
    return getattr(importlib.import_module(module_name), func_name)(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
