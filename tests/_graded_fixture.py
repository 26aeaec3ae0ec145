"""A tiny structurally graded collection (XQuAD-R style) for the training tests.

Articles 0..n-1 with paragraphs of sentences; one question per paragraph whose answer is one of its
sentences. Grades: 3 = the answer sentence, 2 = the rest of its paragraph, 1 = the rest of its
article, 0 = unjudged. The last article is in the test split. One sentence of article 1 has exactly the
text of a sentence of article 0 (the parallel/duplicate-text case).
"""
from __future__ import annotations

import pandas as pd

WORDS = ["river", "castle", "engine", "garden", "planet", "violin", "harbor", "forest", "bridge", "market",
         "tower", "island", "desert", "museum", "school", "valley"]


def graded_collection(n_articles: int = 4, paras: int = 2, sents: int = 3):
    docs, topics, qrels = [], [], []
    for a in range(n_articles):
        split = "test" if a == n_articles - 1 else "train"
        for p in range(paras):
            for s in range(sents):
                w1, w2 = WORDS[(a * 5 + p * 3 + s) % len(WORDS)], WORDS[(a + 2 * p + 3 * s + 1) % len(WORDS)]
                text = f"The {w1} of article {a} is near the {w2}, said paragraph {p} in sentence {s}."
                docs.append({"docno": f"a{a}-p{p}-s{s}", "text": text, "split": split, "article": a, "lang": "en"})
            answer = (a + p) % sents
            qid = f"q{a}-{p}"
            topics.append({"qid": qid, "query": f"where is the {WORDS[(a * 5 + p * 3 + answer) % len(WORDS)]} "
                                                f"of article {a} paragraph {p}?", "article": a,
                           "lang": "en" if a % 2 == 0 else "de", "split": split})
            for p2 in range(paras):
                for s in range(sents):
                    grade = 3 if (p2 == p and s == answer) else 2 if p2 == p else 1
                    qrels.append({"qid": qid, "docno": f"a{a}-p{p2}-s{s}", "label": grade})
    docs_df = pd.DataFrame(docs)
    dup = docs_df.index[docs_df["docno"] == "a1-p0-s2"][0]
    docs_df.loc[dup, "text"] = docs_df.loc[docs_df["docno"] == "a0-p0-s0", "text"].iloc[0]
    topics_df, qrels_df = pd.DataFrame(topics), pd.DataFrame(qrels)
    train = topics_df[topics_df["split"] == "train"].drop(columns=["split"]).reset_index(drop=True)
    train_qrels = qrels_df[qrels_df["qid"].isin(set(train["qid"]))].reset_index(drop=True)
    return train, train_qrels, docs_df
