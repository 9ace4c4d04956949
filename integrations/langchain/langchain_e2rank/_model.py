"""Model loading shared by the LangChain compressor and embeddings."""

from __future__ import annotations

from typing import Any

from e2rank_core import E2RankModel, shared_model


class LoadsSharedModel:
    """Lazy, process-shared :class:`~e2rank_core.E2RankModel` for a pydantic class with the fields ``model``,
    ``device``, ``dtype``, ``trust_remote_code`` and the private attributes ``_model``, ``_model_key``.

    * The model is loaded on first use through ``e2rank_core.shared_model``: every ``E2RankEmbeddings`` and
      ``E2RankRerank`` naming the same (model, device, dtype, trust_remote_code) uses one copy of the weights.
    * Changing one of those fields after loading loads (or finds) the matching model on next use.
    * Copies (``copy.deepcopy``, ``model_copy(deep=True)``) share the loaded model instead of copying its
      weights; pickling keeps the settings only (the model is loaded again on first use after unpickling).
    """

    _model: E2RankModel | None
    _model_key: tuple[Any, ...] | None
    model: str
    device: str | None
    dtype: str | None
    trust_remote_code: bool

    @property
    def e2rank_model(self) -> E2RankModel:
        """The loaded :class:`~e2rank_core.E2RankModel` (loaded on first access, shared per settings)."""
        key = (self.model, self.device, self.dtype, self.trust_remote_code)
        if self._model is None or self._model_key != key:
            self._model = shared_model(
                self.model, device=self.device, dtype=self.dtype, trust_remote_code=self.trust_remote_code
            )
            self._model_key = key
        return self._model

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        if self._model is not None:
            memo[id(self._model)] = self._model  # deepcopy returns the memoised object: the copy shares it
        return super().__deepcopy__(memo)  # type: ignore[misc]

    def __getstate__(self) -> dict[Any, Any]:
        state = dict(super().__getstate__())  # type: ignore[misc]
        private = dict(state.get("__pydantic_private__") or {})
        private["_model"] = private["_model_key"] = None
        state["__pydantic_private__"] = private
        return state
