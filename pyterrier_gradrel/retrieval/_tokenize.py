"""BM25 tokenization for every benchmark language.

PISA's own tokenizer is ASCII-only (``pyterrier_pisa.tokenize('สุนัข Wörld')`` gives ``['w', 'rld']``), so
pyterrier-gradrel tokenizes in Python and hands PISA ready-made terms (term -> count dicts). Two families:

* :class:`ScriptTokenizer` ("script"): NFKC + case folding, then Unicode-script segmentation. Runs of letters,
  combining marks and digits form words (Latin, Cyrillic, Greek, Arabic, Devanagari, ...); scripts written
  without spaces (Han, Hiragana/Katakana, Thai, Lao, Khmer, Myanmar) become overlapping character n-grams
  (bigrams by default). Arabic gets the usual light orthographic normalisation (diacritics, tatweel, alef forms).
* :class:`SubwordTokenizer` ("subword"): the terms are the SentencePiece pieces of the multilingual model's own
  tokenizer (XLM-R vocabulary for multilingual-e5), optionally after lower-casing; pieces without a letter or
  digit (punctuation, the bare word marker) are dropped.

Queries and documents always go through the same :class:`Bm25Tokenizer` object, and every tokenizer has a
``name`` that identifies its behaviour exactly, so the BM25 index cache can key on it.
"""
from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "AUTO_TOKENIZER",
    "TOKENIZER_KINDS",
    "Bm25Tokenizer",
    "ScriptTokenizer",
    "SubwordTokenizer",
    "get_tokenizer",
    "tokenize",
]

#: accepted string specs for :func:`get_tokenizer` (besides ``"subword:<model name or folder>"``)
TOKENIZER_KINDS = ("auto", "script", "subword", "subword-lower")

#: the tokenizer ``"auto"`` resolves to, chosen by measuring BM25 on XQuAD-R test (``gradrel bm25-tokenizers``,
#: experiments/results/bm25_tokenizers/): lower-cased XLM-R pieces have the best nDCG@10 in all
#: 12 languages (mean nDCG@10 0.642 vs 0.577 script, 0.581 cased pieces; Thai 0.704 vs 0.629, Chinese 0.675 vs 0.655)
AUTO_TOKENIZER = "subword-lower"

_DEFAULT_SUBWORD_MODEL = "multilingual-e5-small"

# scripts written without spaces between words: n-grams of characters (combining marks stay in the run)
_SPACELESS = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}"

# Arabic: harakat / Quranic marks, tatweel, and the alef/yeh/teh-marbuta variants folded as in most Arabic IR
_ARABIC_MARKS = "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]"
_ARABIC_FOLD = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})


@functools.lru_cache(maxsize=1)
def _patterns():
    import regex

    token = regex.compile(
        rf"(?P<spaceless>[{_SPACELESS}][{_SPACELESS}\p{{M}}]*)"
        rf"|(?P<word>(?:(?![{_SPACELESS}])[\p{{L}}\p{{N}}])(?:(?![{_SPACELESS}])[\p{{L}}\p{{M}}\p{{N}}])*)"
    )
    arabic_marks = regex.compile(_ARABIC_MARKS)
    has_alnum = regex.compile(r"[\p{L}\p{N}]")
    return token, arabic_marks, has_alnum


class Bm25Tokenizer:
    """Turns a text into BM25 terms. Subclasses implement :meth:`tokenize` and set :attr:`name`.

    ``name`` must change whenever the terms a text yields could change (it is part of index cache keys).
    """

    name: str = "base"

    def tokenize(self, text: str) -> list[str]:
        """The terms of ``text`` in order (repeats kept)."""
        raise NotImplementedError

    def counts(self, text: str) -> dict[str, int]:
        """Term -> frequency for ``text`` (the form PISA indexes and queries with)."""
        return dict(Counter(self.tokenize(text)))

    def __call__(self, text: str) -> list[str]:
        return self.tokenize(text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class ScriptTokenizer(Bm25Tokenizer):
    """Rule-based multilingual tokenizer: Unicode-script segmentation, n-grams for spaceless scripts.

    Args:
        ngram: Character n-gram size for Han/Kana/Thai/Lao/Khmer/Myanmar runs (a run shorter than ``ngram``
            is kept whole). Must be 1, 2 or 3.
        arabic_normalize: Strip Arabic diacritics and tatweel and fold alef/yeh/teh-marbuta variants.

    Example:
        >>> ScriptTokenizer().tokenize("Paris 敏捷的 สุนัข")
        ['paris', '敏捷', '捷的', 'สุ', 'ุน', 'นั', 'ัข']
    """

    def __init__(self, *, ngram: int = 2, arabic_normalize: bool = True) -> None:
        if ngram not in (1, 2, 3):
            raise ValueError(f"ngram must be one of [1, 2, 3], got {ngram!r}")
        self.ngram = ngram
        self.arabic_normalize = bool(arabic_normalize)
        self.name = f"script-ng{ngram}{'-arnorm' if self.arabic_normalize else ''}"

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        token_re, arabic_marks, _ = _patterns()
        text = unicodedata.normalize("NFKC", text).casefold()
        if self.arabic_normalize:
            text = arabic_marks.sub("", text).translate(_ARABIC_FOLD)
        terms: list[str] = []
        n = self.ngram
        for match in token_re.finditer(text):
            run = match.group()
            if match.lastgroup == "word" or len(run) <= n:
                terms.append(run)
            else:
                terms.extend(run[i:i + n] for i in range(len(run) - n + 1))
        return terms


class SubwordTokenizer(Bm25Tokenizer):
    """BM25 terms = the pieces of a Hugging Face fast (SentencePiece/WordPiece) tokenizer.

    Args:
        tokenizer: A ``transformers`` tokenizer (fast or slow) with ``tokenize(text)``.
        lowercase: Case-fold the text before tokenizing.
        label: A short name for the tokenizer's source (used in ``name``); the vocabulary hash is appended.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, *, lowercase: bool = False, label: str = "hf") -> None:
        if not hasattr(tokenizer, "tokenize"):
            raise TypeError(f"tokenizer must be a transformers tokenizer with .tokenize(), got {type(tokenizer).__name__}")
        self.tokenizer = tokenizer
        self.lowercase = bool(lowercase)
        digest = _tokenizer_digest(tokenizer)
        safe_label = "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
        self.name = f"subword-{safe_label}-{digest[:10]}{'-lc' if self.lowercase else ''}"
        self._special = set(getattr(tokenizer, "all_special_tokens", []) or [])

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        _, _, has_alnum = _patterns()
        text = unicodedata.normalize("NFKC", text)
        if self.lowercase:
            text = text.casefold()
        pieces = self.tokenizer.tokenize(text)
        return [p for p in pieces if p not in self._special and has_alnum.search(p) and not any(c.isspace() for c in p)]


def _tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """A sha256 over the tokenizer's full definition (vocabulary, normalizer, pre-tokenizer).

    A fast tokenizer is hashed as a copy without truncation and padding: encoding with ``truncation=`` /
    ``padding=`` leaves that state on the backend, and it never changes the pieces :meth:`SubwordTokenizer.tokenize`
    yields, so the same tokenizer has the same digest before and after it has encoded. (A freshly loaded
    tokenizer whose file stores no truncation or padding, like multilingual-e5-small's, hashes as it always did.)
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        from tokenizers import Tokenizer

        clean = Tokenizer.from_str(backend.to_str())
        clean.no_truncation()
        clean.no_padding()
        payload = clean.to_str()
    else:  # slow tokenizer: the vocabulary is what decides the pieces
        payload = repr(sorted(tokenizer.get_vocab().items()))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=8)
def _subword_from_source(source: str, lowercase: bool) -> SubwordTokenizer:
    from transformers import AutoTokenizer

    path = Path(source).expanduser()
    if path.is_dir():
        label = path.name
    else:
        from pyterrier_gradrel.models import resolve_model

        label = source
        path = Path(resolve_model(source).path)
    return SubwordTokenizer(AutoTokenizer.from_pretrained(str(path)), lowercase=lowercase, label=label)


def get_tokenizer(spec: str | Bm25Tokenizer | PreTrainedTokenizerBase = "auto", *, lang: str | None = None) -> Bm25Tokenizer:
    """Resolve a tokenizer spec to a :class:`Bm25Tokenizer`.

    Args:
        spec: One of ``"auto"`` (the measured default, :data:`AUTO_TOKENIZER`), ``"script"``, ``"subword"`` /
            ``"subword-lower"`` (multilingual-e5-small's XLM-R SentencePiece vocabulary), ``"subword:<model name
            or folder>"`` / ``"subword-lower:<...>"``, a :class:`Bm25Tokenizer`, or a ``transformers`` tokenizer.
        lang: The document language (reserved for per-language choices; the measured default wins in every
            language and is language-independent, which keeps cross-lingual queries and documents consistent).

    Returns:
        The tokenizer; string specs are cached, so the same spec gives the same object.
    """
    del lang  # one tokenizer for every language: see AUTO_TOKENIZER
    if isinstance(spec, Bm25Tokenizer):
        return spec
    if not isinstance(spec, str):
        if hasattr(spec, "tokenize") and hasattr(spec, "get_vocab"):
            return SubwordTokenizer(spec, label=type(spec).__name__)
        raise TypeError(f"tokenizer must be a str spec, a Bm25Tokenizer or a transformers tokenizer, got {type(spec).__name__}")
    if spec == "auto":
        spec = AUTO_TOKENIZER
    kind, _, source = spec.partition(":")
    if kind == "script" and not source:
        return _script()
    if kind in ("subword", "subword-lower"):
        return _subword_from_source(source or _DEFAULT_SUBWORD_MODEL, kind == "subword-lower")
    raise ValueError(
        f"tokenizer must be one of {list(TOKENIZER_KINDS)} or 'subword:<model name or folder>', got {spec!r}"
    )


@functools.lru_cache(maxsize=1)
def _script() -> ScriptTokenizer:
    return ScriptTokenizer()


def tokenize(text: str, *, tokenizer: str | Bm25Tokenizer = "auto") -> list[str]:
    """Tokenize ``text`` for BM25 with the given tokenizer spec (see :func:`get_tokenizer`)."""
    return get_tokenizer(tokenizer).tokenize(text)
