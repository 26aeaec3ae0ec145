"""The one YAML reader of the package: safe loading, and a key written twice is an error.

PyYAML keeps the last value of a repeated key without a word, so ``depth: 100`` followed further down by
``depth: 10`` silently changes a run. Every YAML file the package reads (experiment configs, benchmark suites,
pinned expectations, local-collection manifests, the datasets registry) goes through :func:`load_file` or
:func:`loads`; their errors name the file and the line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["YAMLFileError", "load_file", "loads"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class YAMLFileError(ValueError):
    """A YAML file that cannot be read: not UTF-8, not YAML, or a mapping that repeats a key.

    The message starts with the file (and, where known, the line): ``experiments/x.yaml:12: ...``.
    """


def _loader_class() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser when libyaml is present

    class _UniqueKeyLoader(base):  # type: ignore[misc, valid-type]
        source = "<string>"

        def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN202 (PyYAML's constructor protocol)
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE_TAG:  # '<<: *anchor' merges; a key written after it overrides on purpose
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: PyYAML's own error says so below
                    continue
                if first is not None:
                    raise YAMLFileError(f"{self.source}:{line}: key {key!r} is written twice (first on line "
                                        f"{first}); YAML would keep only the last value: remove one")
                seen[key] = line
            return super().construct_mapping(node, deep=deep)

    return _UniqueKeyLoader


_LOADER: type | None = None


def loads(text: str, *, source: str | os.PathLike) -> Any:
    """Parse ``text`` (one YAML document) as safely as ``yaml.safe_load``, refusing repeated keys.

    Args:
        text: The YAML text.
        source: What the text was read from (a path), named in every error.

    Raises:
        YAMLFileError: ``text`` is not valid YAML or repeats a key of a mapping (file and line named).
    """
    import yaml

    global _LOADER
    if _LOADER is None:
        _LOADER = _loader_class()
    loader = _LOADER(text)
    loader.source = str(source)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise YAMLFileError(f"{source}: not valid YAML: {_without_stream_name(exc)}") from None
    finally:
        loader.dispose()


def load_file(path: str | os.PathLike) -> Any:
    """Read and parse the YAML (or JSON) file ``path`` with :func:`loads`.

    Raises:
        YAMLFileError: the file is not UTF-8, not valid YAML, or repeats a key (the message names the file).
        FileNotFoundError: there is no such file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise YAMLFileError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start}, "
                            f"{exc.object[exc.start:exc.start + 1]!r}); save it as UTF-8") from None
    return loads(text, source=path)


def _without_stream_name(exc: Exception) -> str:
    """PyYAML's message with its ``in "<unicode string>"`` stream names dropped (the file is named instead)."""
    import re

    return re.sub(r'\s*in "<(?:unicode |byte )?string>",', ",", str(exc)).replace("\n", " ").strip()
