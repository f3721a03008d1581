"""Synthetic stand-ins for the emotion models, for tests and ``write-test-models`` (NOT real models).

* :func:`write_test_text_encoder`: a small random ``BertModel`` in transformers format in place of
  sentence-transformers/all-MiniLM-L6-v2 (``config.json``, ``model.safetensors``) with a real BERT
  WordPiece tokenizer (``tokenizer.json``, ``vocab.txt``, ...) built here from a small vocabulary:
  the special tokens, every printable ASCII character (alone and as a ``##`` continuation, so any
  English text tokenizes without ``[UNK]``) and the lower-cased words of the emotion descriptions.
  Nothing is downloaded.  Its sentence embeddings are random features of the text: zero-shot
  Emotion From Text runs end to end, but its emotion weights mean nothing.
* :func:`write_test_emotion_space` / :func:`write_test_lip_classifier`: the project's own
  :class:`~playmate.motion.emotion_space.EmotionSpace` and
  :class:`~playmate.motion.lip_guidance.LipSyncClassifier` at their initialisation (seeded), sized for
  the synthetic text encoder and the Playmate generator written beside them (its audio features), written by the
  same functions as ``python -m playmate.train emotion-space`` / ``lip-classifier``.
"""

import re
import string
from pathlib import Path

import torch

TEXT_HIDDEN = 32
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def build_vocabulary(texts=()):
    """WordPiece vocabulary (list, index = id): specials, ASCII characters and their ``##`` forms,
    then the distinct lower-cased words (and punctuation-free pieces) of the emotion descriptions and
    ``texts``, in sorted order (deterministic)."""
    from ..motion.emotion_space import EMOTION_DESCRIPTIONS
    chars = [c for c in string.printable if not c.isspace()]
    vocab = list(SPECIAL_TOKENS) + chars + ["##" + c for c in chars]
    corpus = [t for ts in EMOTION_DESCRIPTIONS.values() for t in ts] + list(texts)
    words = sorted({w for t in corpus for w in re.findall(r"[a-z0-9]+", t.lower())} - set(vocab))
    return vocab + words


def build_tokenizer(vocab):
    """A transformers ``BertTokenizerFast`` on ``vocab`` (BERT normaliser, pre-tokeniser and template)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast
    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.decoder = decoders.WordPiece(prefix="##")
    return BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                             cls_token="[CLS]", mask_token="[MASK]", do_lower_case=True, model_max_length=512)


def write_test_text_encoder(folder, seed=0, hidden=TEXT_HIDDEN, label=""):
    """A small random BERT sentence model + its tokenizer in ``folder`` (see the module docstring)."""
    from transformers import BertConfig, BertModel
    folder = Path(folder)
    vocab = build_vocabulary()
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=512, pad_token_id=0)
    torch.manual_seed(seed)
    model = BertModel(config).eval()   # with the pooler, as the real model file has (so it loads cleanly)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    build_tokenizer(vocab).save_pretrained(str(folder))
    if label:
        (folder / "SYNTHETIC.txt").write_text(label)
    return folder


def _audio_fields(generator_cfg):
    """The audio-feature fields of a Playmate generator config (what the heads must read)."""
    return {"audio_dim": generator_cfg.audio_dim, "audio_layers": list(generator_cfg.audio_layers),
            "audio_encoder": generator_cfg.audio_encoder, "fps": generator_cfg.fps}


def write_test_emotion_space(path, generator_cfg, text_dim=TEXT_HIDDEN, seed=0):
    """A seeded, untrained :class:`EmotionSpace` (the tiny heads) reading ``text_dim`` sentence embeddings
    and the audio features of ``generator_cfg`` (a :class:`~playmate.motion.dit.PlaymateConfig`)."""
    from ..motion.emotion_space import EmotionSpace, EmotionSpaceConfig, save_emotion_space
    cfg = EmotionSpaceConfig(dim=16, hidden=64, text_dim=int(text_dim), **_audio_fields(generator_cfg))
    torch.manual_seed(seed)
    return save_emotion_space(path, EmotionSpace(cfg), info={"synthetic": True, "seed": seed,
                                                            "note": "random weights: the estimates are meaningless"})


def write_test_lip_classifier(path, generator_cfg, seed=0):
    """A seeded, untrained :class:`LipSyncClassifier` (the tiny size) that fits ``generator_cfg``
    (audio features and diffusion steps, see :meth:`~playmate.motion.lip_guidance.LipGuidance.check`)."""
    from ..motion.lip_guidance import LipClassifierConfig, LipSyncClassifier, save_lip_classifier
    cfg = LipClassifierConfig(hidden=48, blocks=2, kernel=5, diffusion_steps=generator_cfg.diffusion_steps,
                              **_audio_fields(generator_cfg))
    torch.manual_seed(seed)
    info = {"synthetic": True, "seed": seed, "note": "random weights: the guidance is meaningless"}
    return save_lip_classifier(path, LipSyncClassifier(cfg), info=info)
