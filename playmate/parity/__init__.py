"""`python -m playmate.parity <command>`: golden parity checks and synthetic model folders.

    liveportrait       LivePortrait networks vs the golden cases (shared/golden/liveportrait)
    joyvasa            JoyVASA motion generator vs the golden cases (shared/golden/joyvasa)
    ditto              Ditto motion generator vs the golden cases (shared/golden/ditto)
    write-weights      a complete synthetic LivePortrait folder in the official layout
    write-test-models  a complete synthetic models folder: every model the nodes load (LivePortrait, Playmate,
                       JoyVASA, Ditto, wav2vec2, text encoder, emotion space, lip classifier, landmarker)

The golden folder: ``--cases DIR``, else $PLAYMATE_SHARED/golden/..., else ../shared/golden/...
beside the repository (:mod:`.common`).  Test and parity tooling only: the runtime library never
imports this package.
"""

import sys

from . import ditto, joyvasa, liveportrait, testmodels

COMMANDS = {
    "liveportrait": liveportrait.main,
    "write-weights": liveportrait.main_write_weights,
    "joyvasa": joyvasa.main,
    "ditto": ditto.main,
    "write-test-models": testmodels.main,
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:]) or 0
