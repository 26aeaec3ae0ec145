"""The public API of ``pyterrier_gradrel.retrieval`` is fully annotated, without ``Any``."""
from __future__ import annotations

import inspect
import typing

import pyterrier_gradrel.retrieval as retrieval


def _callables():
    for name in retrieval.__all__:
        obj = getattr(retrieval, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj):
            for attr, value in vars(obj).items():
                if attr.startswith("_") and attr != "__init__":
                    continue
                func = value.fget if isinstance(value, property) else getattr(value, "__func__", value)
                if inspect.isfunction(func) and func.__module__.startswith("pyterrier_gradrel"):
                    yield f"{name}.{attr}", func


def test_every_public_parameter_and_return_is_annotated_without_any():
    problems = []
    for qual, func in _callables():
        sig = inspect.signature(func)
        for pname, param in sig.parameters.items():
            if pname in ("self", "cls"):
                continue
            if param.annotation is inspect.Parameter.empty:
                problems.append(f"{qual}({pname}) has no annotation")
            elif "Any" in str(param.annotation):
                problems.append(f"{qual}({pname}): {param.annotation}")
        ret = sig.return_annotation
        if ret is inspect.Signature.empty and not qual.endswith("__init__"):
            problems.append(f"{qual} has no return annotation")
        elif "Any" in str(ret):
            problems.append(f"{qual} -> {ret}")
    assert not problems, "\n".join(problems)


def test_the_input_protocols_describe_what_the_functions_accept():
    from _retrieval_fixtures import TinyDataset

    assert set(typing.get_args(retrieval.DatasetLike)) == {str, retrieval.CorpusDataset}
    assert hasattr(TinyDataset(), "get_corpus_iter")  # the fixture is a CorpusDataset
    assert retrieval.DenseEncoder in typing.get_args(retrieval.EncoderLike)
