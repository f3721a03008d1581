"""The one emotion parser (names, mixtures, schedules) and the generator interface."""

import pytest
import torch

from playmate.errors import InputError
from playmate.motion.emotion import (DITTO_ORDER, EMOTIONS, EmotionSchedule, frame_weights, parse_emotion,
                                     to_ditto_order)
from playmate.motion.generator import SamplingDefaults, check_steps


def test_names_and_mixtures():
    assert parse_emotion("Happy") == {"happy": 1.0}
    assert parse_emotion("happy:3,sad:1") == {"happy": 0.75, "sad": 0.25}
    assert parse_emotion("surprise:1, disgust:1") == {"surprised": 0.5, "disgusted": 0.5}   # aliases
    assert parse_emotion("none") is None and parse_emotion("") is None
    for bad, words in (("furious", ["Unknown emotion 'furious'", "surprised"]), ("happy:lots", ["'lots'", "not a number"]),
                       ("happy:-1", [">= 0"]), ("happy:0", ["no positive weight"])):
        with pytest.raises(InputError) as err:
            parse_emotion(bad)
        assert all(w in str(err.value) for w in words), str(err.value)


def test_schedule_switches_at_the_given_times():
    s = parse_emotion("0:neutral, 2.5:happy, 6:sad@0.6")
    assert isinstance(s, EmotionSchedule) and [k.time for k in s.keys] == [0.0, 2.5, 6.0]
    w, inten = s.with_crossfade(0.0).frames(200, 25.0)     # 8 s at 25 fps, hard switches
    happy, neutral, sad = (EMOTIONS.index(e) for e in ("happy", "neutral", "sad"))
    assert w[:63, neutral].eq(1).all() and w[63:150, happy].eq(1).all() and w[150:, sad].eq(1).all()
    assert inten[:150].eq(1).all() and torch.allclose(inten[150:], torch.tensor(0.6))
    w, inten = s.frames(200, 25.0)                          # 0.5 s crossfade centred on 2.5 s
    assert w[56, neutral] == 1 and w[69, happy] == 1        # 2.24 s: not started; 2.76 s: done
    assert abs(float(w[62, happy]) - 0.46) < 1e-6           # 2.48 s: (2.48 - 2.25) / 0.5
    assert torch.allclose(w.sum(1), torch.ones(200))
    assert parse_emotion("1s: happy 0.7 + sad 0.3").keys[0].weights[happy] == pytest.approx(0.7)
    for bad in ("0:neutral, 0:happy", "-1:happy", "2.5"):
        with pytest.raises(InputError):
            EmotionSchedule.parse(bad)


def test_frame_weights_of_every_form():
    for value in ("happy", {"happy": 2.0}, torch.eye(8)[EMOTIONS.index("happy")] * 3):
        w, inten = frame_weights(value, 4, 25.0, intensity=0.5)
        assert w.shape == (4, 8) and w[:, EMOTIONS.index("happy")].eq(1).all() and inten.eq(0.5).all()
    rows = torch.rand(5, 8) + 0.1
    assert torch.allclose(frame_weights(rows, 5, 25.0)[0], rows / rows.sum(1, keepdim=True))
    assert frame_weights("none", 5, 25.0) is None
    with pytest.raises(InputError, match="has 5 rows, the clip has 6"):
        frame_weights(rows, 6, 25.0)


def test_ditto_order():
    # Ditto: 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Neutral, 5 Sad, 6 Surprise, 7 Contempt
    assert DITTO_ORDER.index("neutral") == 4 and DITTO_ORDER.index("contempt") == 7
    ours = torch.arange(8.0)
    mapped = to_ditto_order(ours)
    for j, name in enumerate(DITTO_ORDER):
        assert mapped[j] == EMOTIONS.index(name)


def test_one_steps_rule():
    d = SamplingDefaults(steps=25, cfg_audio=2.0, min_steps=2, max_steps=50)
    assert check_steps(None, d, "x") == 25 and check_steps(2, d, "x") == 2
    for bad in (1, 51, 2.5, "many"):
        with pytest.raises(InputError, match="steps must be an integer"):
            check_steps(bad, d, "x")
