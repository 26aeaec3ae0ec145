"""The input protocols of ``pyterrier_gradrel.retrieval`` (its annotation check is in test_package.py)."""
from __future__ import annotations

import typing

import pyterrier_gradrel.retrieval as retrieval


def test_the_input_protocols_describe_what_the_functions_accept():
    from _retrieval_fixtures import TinyDataset

    assert set(typing.get_args(retrieval.DatasetLike)) == {str, retrieval.CorpusDataset}
    assert hasattr(TinyDataset(), "get_corpus_iter")  # the fixture is a CorpusDataset
    assert retrieval.DenseEncoder in typing.get_args(retrieval.EncoderLike)
