"""E2RankTextEmbedder: embeds a query in E2Rank's retrieval format."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.components.rankers.e2rank._common import (
    DEFAULT_TOKEN,
    check_positive,
    deserialize_common,
    load_model,
    serialize_common,
)

from e2rank_core import E2RankModel, default_model


@component
class E2RankTextEmbedder:
    """Embed a query for retrieval as ``Instruct: {instruction}\\nQuery:{text}``, with the model that reranks.

    Usage::

        from haystack_integrations.components.embedders.e2rank import E2RankTextEmbedder

        embedder = E2RankTextEmbedder(model="e2rank/minilm-l6-e2rank")
        vector = embedder.run(text="capital of France")["embedding"]

    ``instruction=None`` uses the paper's default web-search task. ``plain_queries=True`` embeds the bare query
    text instead, for models never trained with instructions (e.g. the base all-MiniLM-L6-v2, whose retrieval
    quality drops with the instruction prefix).
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        instruction: str | None = None,
        plain_queries: bool = False,
        batch_size: int = 32,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        check_positive("batch_size", batch_size)
        self.model = model or default_model()
        self.device = ComponentDevice.resolve_device(device)
        self.token = token
        self.instruction = instruction
        self.plain_queries = plain_queries
        self.batch_size = batch_size
        self.dtype = dtype
        self.model_kwargs = model_kwargs
        self.trust_remote_code = trust_remote_code
        self._model: E2RankModel | None = None

    def warm_up(self) -> None:
        """Load the model (once)."""
        if self._model is None:
            self._model = load_model(
                self.model, self.device, self.token, self.dtype, self.trust_remote_code, self.model_kwargs
            )

    def _get_telemetry_data(self) -> dict[str, Any]:
        return {"model": self.model}

    def to_dict(self) -> dict[str, Any]:
        params = serialize_common(
            {
                "model": self.model,
                "device": self.device,
                "token": self.token,
                "instruction": self.instruction,
                "plain_queries": self.plain_queries,
                "batch_size": self.batch_size,
                "dtype": self.dtype,
                "model_kwargs": self.model_kwargs,
                "trust_remote_code": self.trust_remote_code,
            }
        )
        return default_to_dict(self, **params)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> E2RankTextEmbedder:
        return default_from_dict(cls, deserialize_common(data))

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed one query text."""
        if not isinstance(text, str):
            raise TypeError(
                "E2RankTextEmbedder expects a string; to embed documents use E2RankDocumentEmbedder, "
                f"got {type(text).__name__}"
            )
        self.warm_up()
        assert self._model is not None
        vector = self._model.embed_queries(
            [text], instruction=self.instruction, plain=self.plain_queries, batch_size=self.batch_size
        )[0]
        return {"embedding": vector.tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """Same as :meth:`run`, in a worker thread."""
        return await asyncio.to_thread(self.run, text)
