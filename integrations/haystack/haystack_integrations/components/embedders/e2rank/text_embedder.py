"""E2RankTextEmbedder: embeds a query in the retrieval format of the model that reranks."""

from __future__ import annotations

import asyncio
from typing import Any

from haystack import component
from haystack.utils import ComponentDevice, Secret
from haystack_integrations.common.e2rank import E2RankComponent
from haystack_integrations.common.e2rank.component import DEFAULT_TOKEN

from e2rank_core.settings import check_flag, check_top_k


@component
class E2RankTextEmbedder(E2RankComponent):
    """Embed a query for retrieval with the model that reranks.

    Usage::

        from haystack_integrations.components.embedders.e2rank import E2RankTextEmbedder

        embedder = E2RankTextEmbedder(model="e2rank/minilm-l6-e2rank")
        vector = embedder.run(text="capital of France")["embedding"]

    The query format follows the model: ``Instruct: {instruction}\\nQuery:{text}`` for models trained with it
    (E2Rank's own and e2rank's bundled model; ``instruction=None`` is the paper's web-search task), the bare text for
    other embedders (e.g. the base all-MiniLM-L6-v2). ``plain_queries=True``/``False`` overrides.
    ``progress_bar`` and ``normalize_embeddings`` are accepted as in Haystack's sentence-transformers embedders.
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        device: ComponentDevice | None = None,
        token: Secret | None = DEFAULT_TOKEN,
        instruction: str | None = None,
        plain_queries: bool | None = None,
        batch_size: int = 32,
        progress_bar: bool = True,
        normalize_embeddings: bool = True,
        dtype: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        trust_remote_code: bool = False,
        backend: str = "torch",
    ) -> None:
        self._init_model_settings(model, device, token, dtype, model_kwargs, trust_remote_code, backend)
        if instruction is not None and not isinstance(instruction, str):
            raise TypeError(f"instruction must be a string or None, got {type(instruction).__name__}")
        self.instruction = instruction
        self.plain_queries = None if plain_queries is None else check_flag("plain_queries", plain_queries)
        self.batch_size = check_top_k("batch_size", batch_size)
        self.progress_bar = check_flag("progress_bar", progress_bar)
        self.normalize_embeddings = check_flag("normalize_embeddings", normalize_embeddings)

    @component.output_types(embedding=list[float])
    def run(self, text: str) -> dict[str, list[float]]:
        """Embed one query text."""
        if not isinstance(text, str):
            raise TypeError(
                "E2RankTextEmbedder expects a string; to embed documents use E2RankDocumentEmbedder, "
                f"got {type(text).__name__}"
            )
        vector = self.e2rank_model.embed_queries(
            [text], instruction=self.instruction, plain=self.plain_queries, batch_size=self.batch_size
        )[0]
        return {"embedding": vector.tolist()}

    @component.output_types(embedding=list[float])
    async def run_async(self, text: str) -> dict[str, list[float]]:
        """Same as :meth:`run`, in a worker thread."""
        return await asyncio.to_thread(self.run, text)
