"""A judged cross-lingual local collection as a user brings one: German questions over English passages,
``manifest.yaml``, documents without the optional ``split``/``article`` fields, grades 0-3 judged (not
structural), train and test splits but no dev split."""
from __future__ import annotations

import json
from pathlib import Path

PASSAGES = ["Berlin is the capital of Germany.", "Paris is the capital of France.", "Rome lies on the Tiber.",
            "Madrid is in Spain.", "Vienna is on the Danube.", "Lisbon faces the Atlantic.",
            "The Rhine flows into the North Sea.", "Athens is the capital of Greece."]
QUESTIONS = ["Was ist die Hauptstadt von Deutschland?", "Was ist die Hauptstadt von Frankreich?",
             "Welcher Fluss fließt durch Rom?", "Wo liegt Madrid?", "Wo liegt Wien?", "Was ist Athen?"]


def judged_collection(home: Path, name: str, *, grades: str = "{0: none, 1: some, 2: most, 3: all}",
                      rel: int = 2) -> Path:
    """Write the collection to ``home/collections/<name>`` (found by name with ``GRADREL_HOME=home``).

    Query ``q<i>`` has grade 3 on passage ``p<i>`` and grade 1 on ``p<i+1>``; q0-q2 train, q3-q5 test.
    """
    folder = home / "collections" / name
    folder.mkdir(parents=True)
    (folder / "docs.jsonl").write_text("".join(json.dumps({"doc_id": f"p{i}", "text": t}) + "\n"
                                              for i, t in enumerate(PASSAGES)), encoding="utf-8")
    for split, qs in (("train", range(0, 3)), ("test", range(3, 6))):
        (folder / f"queries.{split}.tsv").write_text("".join(f"q{i}\t{QUESTIONS[i]}\n" for i in qs), encoding="utf-8")
        (folder / f"qrels.{split}.txt").write_text(
            "".join(f"q{i} 0 p{i} 3\nq{i} 0 p{(i + 1) % 8} 1\n" for i in qs), encoding="utf-8")
    (folder / "manifest.yaml").write_text(f"name: {name}\nlang: en\nquery_lang: de\nstructural: false\n"
                                          f"grades: {grades}\ndefault_rel: {rel}\n", encoding="utf-8")
    return folder
