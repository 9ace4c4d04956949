"""Model loading, tokenisation and forward passes: everything that touches torch lives here.

The token layout of each model family (wrapping, EOS, padding side, chat template) is owned by a family object
(:mod:`e2rank_core.families`); the listwise prompt's truncation policy lives in :mod:`e2rank_core.prompt_fitting`.

Text written by users is always tokenised with ``split_special_tokens=True``: ``<|endoftext|>``,
``<|im_start|>`` or ``[SEP]`` inside a query or document are plain characters, never control tokens.
Only the chat-template scaffolding and the appended EOS are real special tokens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .families import E2RANK_EOS, ModelFamily, family_for, is_decoder_family
from .prompt_fitting import TokenizedText, fit_documents_to_budget, fit_prompt, prepare_documents
from .prompts import listwise_prompt_content
from .resolve import ResolvedModel
from .scoring import l2_normalize
from .st_folder import (
    StFolderEncoder,
    TokenizerOnlyEncoder,
    light_loader_enabled,
    load_st_folder,
    load_st_folder_tokenizer,
)

__all__ = ["E2RANK_EOS", "EmbeddingBackend", "EncodedInput", "fit_documents_to_budget", "is_decoder_family"]

logger = logging.getLogger("e2rank")

_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    # Exact mode: a float64 forward pass, rounded to float32 at the end, makes every vector depend on its own tokens
    # only (not on what it was batched with), at about twice the CPU time.
    "float64": torch.float64,
    "fp64": torch.float64,
    "double": torch.float64,
}

#: On a CPU a forward pass costs about as much as its padded tokens, so a batch is cut wherever padding would pass
#: this share of its real tokens (embed_documents of BM25 candidates about 1.4x faster on 2 cores, issue #20)...
CPU_PADDING_LIMIT = 0.1
#: ... and wherever it would pass this many padded tokens: past it the activations leave the caches (on 2 cores 32 x
#: 512 tokens cost 7-17% more per sequence than 4-8 x 512). Accelerators keep full batches: there a batch costs
#: little more than one sequence.
CPU_MAX_BATCH_TOKENS = 2048


def length_batches(
    lengths: Sequence[int], batch_size: int, padding_limit: float | None = None, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices of ``lengths``, longest first, cut into batches of at most ``batch_size``.

    With ``padding_limit`` a batch is also cut before a sequence whose padding to the batch's longest would make the
    padded tokens exceed ``(1 + padding_limit)`` times the real ones, and with ``max_tokens`` before its padded
    tokens would exceed ``max_tokens`` (a single sequence is never cut).

        >>> length_batches([3, 10, 9, 3], batch_size=8, padding_limit=0.1)
        [[1, 2], [0, 3]]
        >>> length_batches([512] * 5, batch_size=32, max_tokens=2048)
        [[0, 1, 2, 3], [4]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    limit = float("inf") if padding_limit is None else 1 + padding_limit
    budget = float("inf") if max_tokens is None else max_tokens
    batches: list[list[int]] = []
    batch: list[int] = []
    real = 0
    for i in order:
        padded = lengths[batch[0]] * (len(batch) + 1) if batch else 0
        if batch and (len(batch) == batch_size or padded > limit * (real + lengths[i]) or padded > budget):
            batches.append(batch)
            batch, real = [], 0
        batch.append(i)
        real += lengths[i]
    if batch:
        batches.append(batch)
    return batches


def resolve_dtype(dtype: str | torch.dtype | None) -> torch.dtype | None:
    """``None``/``"auto"`` keeps the checkpoint's dtype (float32 for GGUF); strings name a torch dtype."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return None
    try:
        return _DTYPES[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise ValueError(f"dtype must be one of {sorted(set(_DTYPES))} or 'auto', got {dtype!r}") from None


def resolve_device(device: str | torch.device | None) -> str:
    """``None``/``"auto"`` picks cuda, then mps, then cpu; a named accelerator must be available here."""
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    name = str(device)
    kind = name.split(":")[0]
    if kind not in {"cpu", "cuda", "mps", "xpu", "npu", "hpu"}:
        raise ValueError(f"device must be 'cpu', 'cuda[:N]', 'mps' or 'auto', got {device!r}")
    available = {
        "cuda": torch.cuda.is_available,
        "mps": lambda: getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available(),
        "xpu": lambda: hasattr(torch, "xpu") and torch.xpu.is_available(),
    }
    if kind in available and not available[kind]():
        raise ValueError(f"device {name!r} was asked for, but this machine's torch has no {kind} device available")
    if kind == "cuda" and ":" in name:
        index = name.split(":", 1)[1]
        if not index.isdigit() or int(index) >= torch.cuda.device_count():
            raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return name


def _check_cpu_runtime(backend: str, resolved: ResolvedModel, device: object, dtype: str | torch.dtype | None) -> None:
    """The exported backends run float32 encoders on the CPU (OpenVINO also bfloat16): else a clear error first."""
    if resolved.gguf_file:
        raise ValueError(
            f"backend {backend!r} does not serve GGUF models ({resolved.name!r} is a .gguf decoder); "
            "use backend='torch'"
        )
    if device is not None and str(device) not in {"cpu", "auto"}:
        raise ValueError(f"backend {backend!r} runs on the CPU; got device={str(device)!r} (use backend='torch' there)")
    from .runtimes import BFLOAT16_RUNTIMES, split_backend

    runtime, _ = split_backend(backend)
    compute = resolve_dtype(dtype)  # one dtype vocabulary: resolve_dtype's
    if compute in (None, torch.float32) or (runtime in BFLOAT16_RUNTIMES and compute == torch.bfloat16):
        return
    raise ValueError(
        f"backend {backend!r} exports float32 models; got dtype={dtype!r} (for int8 use backend='{runtime}-int8'; "
        "bfloat16 arithmetic: backend='openvino', dtype='bfloat16')"
    )


@dataclass(frozen=True, slots=True)
class EncodedInput:
    """Token ids ready for a forward pass, plus the text they encode (after any truncation)."""

    input_ids: list[int]
    text: str
    truncated: bool


class EmbeddingBackend:
    """A sentence-transformers model (or its light equivalent, :mod:`e2rank_core.st_folder`) plus its family's tokens.

    Built by :class:`~e2rank_core.E2RankModel`; not meant to be used directly.
    """

    def __init__(
        self,
        resolved: ResolvedModel,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        trust_remote_code: bool = False,
        token: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        max_document_tokens: int | None = None,
        max_query_tokens: int = 512,
        max_prompt_tokens: int | None = None,
        backend: str | None = None,
    ) -> None:
        from transformers import AutoConfig

        from .runtimes import check_backend, export_needs_torch_model, split_backend

        self.resolved = resolved
        self.backend_name = check_backend(backend)
        runtime, _ = split_backend(self.backend_name)
        # exported backends: the graph is always exported from the float32 model; dtype is the runtime's arithmetic
        self.runtime_dtype: torch.dtype | None = None
        if runtime != "torch":
            _check_cpu_runtime(self.backend_name, resolved, device, dtype)
            device = "cpu"
            self.runtime_dtype = resolve_dtype(dtype) or torch.float32
            dtype = None
        self.device = resolve_device(device)
        torch_dtype = resolve_dtype(dtype)
        if torch_dtype is None and self.device == "cpu":
            torch_dtype = torch.float32  # half-precision checkpoints are slow and lossy on CPUs
        model_kwargs = dict(model_kwargs or {})
        processor_kwargs = dict(tokenizer_kwargs or {})
        config_kwargs: dict[str, Any] = {}
        if torch_dtype is not None:
            model_kwargs["dtype"] = torch_dtype
        if resolved.gguf_file:
            for kwargs in (model_kwargs, processor_kwargs, config_kwargs):
                kwargs["gguf_file"] = resolved.gguf_file
        common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if token:
            common["token"] = token

        config = AutoConfig.from_pretrained(resolved.path, **config_kwargs, **common)
        self.model_type: str = config.model_type
        if runtime != "torch" and is_decoder_family(config.model_type):
            raise ValueError(
                f"backend {self.backend_name!r} does not serve decoder models ({resolved.name!r} is a "
                f"{config.model_type} decoder): only encoder embedders are exported; use backend='torch'"
            )
        decoder = is_decoder_family(config.model_type)

        def load_sentence_transformer() -> Any:
            from sentence_transformers import SentenceTransformer

            if decoder:
                # Always last-token pooling + normalisation, whatever pooling a folder's ST config may claim.
                from sentence_transformers.base.modules import Normalize, Transformer
                from sentence_transformers.sentence_transformer.modules import Pooling

                transformer = Transformer(
                    resolved.path,
                    model_kwargs={**model_kwargs, **common},
                    processor_kwargs={**processor_kwargs, **common},
                    config_kwargs={**config_kwargs, **common},
                )
                pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="lasttoken")
                return SentenceTransformer(modules=[transformer, pooling, Normalize()], device=self.device)
            return SentenceTransformer(
                resolved.path,
                device=self.device,
                model_kwargs=dict(model_kwargs) or None,
                processor_kwargs=dict(processor_kwargs) or None,
                config_kwargs=dict(config_kwargs) or None,
                **common,
            )

        self._load_sentence_transformer = load_sentence_transformer
        self._st_lock = threading.Lock()
        self._st_model: Any = None
        # Encoder folders that are a plain Transformer -> Pooling -> [Normalize] pipeline load without importing
        # sentence-transformers (seconds of cold start, issue #20); st_model still gives the real one on demand.
        # With an exported backend whose export is cached (or made from the cached float32 ONNX file), not even the
        # PyTorch model is needed: the tokenizer and the folder's settings are (TokenizerOnlyEncoder), and the
        # forward pass is the exported graph.
        self._light: StFolderEncoder | TokenizerOnlyEncoder | None = None
        light = not decoder and not resolved.gguf_file and light_loader_enabled()
        if light and not export_needs_torch_model(self.backend_name, resolved.path):
            self._light = load_st_folder_tokenizer(
                resolved.path,
                model_kwargs=model_kwargs,
                processor_kwargs=processor_kwargs,
                config_kwargs=config_kwargs,
                **common,
            )
        if light and self._light is None:
            self._light = load_st_folder(
                resolved.path,
                device=self.device,
                model_kwargs=model_kwargs,
                processor_kwargs=processor_kwargs,
                config_kwargs=config_kwargs,
                **common,
            )
        if self._light is None:
            self._st_model = load_sentence_transformer()
            self._st_model.eval()
        self.tokenizer = self.encoder.tokenizer
        if self.tokenizer is None:
            raise ValueError(f"model {resolved.name!r} has no text tokenizer")
        self.family: ModelFamily = family_for(config.model_type, self.tokenizer, resolved.name)
        self.is_decoder = self.family.is_decoder
        self.dimension: int = int(self.encoder.get_embedding_dimension())

        position_limit = int(getattr(config, "max_position_embeddings", 0) or 0) or 512
        # Decoders: the E2Rank README's max_length; encoders: their own sentence-transformers limit, so that
        # document embeddings equal ST's encode().
        default_doc = (
            min(position_limit, 8192) if self.is_decoder else int(self.encoder.max_seq_length or position_limit)
        )
        self.position_limit = position_limit
        self.max_document_tokens = int(max_document_tokens or default_doc)
        self.max_query_tokens = int(max_query_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens or min(position_limit, 32768))
        for name in ("max_document_tokens", "max_query_tokens", "max_prompt_tokens"):
            if getattr(self, name) < 4:
                raise ValueError(f"{name} must be at least 4, got {getattr(self, name)}")
        self._warned: set[str] = set()
        # onnx / openvino: the same padded batches go through an exported copy of st_model (see runtimes.py), which
        # loads the SentenceTransformer only when that export is not cached yet
        self.runtime: Any = None
        if runtime != "torch":
            from .runtimes import load_runtime

            names = ("input_ids", "attention_mask", *(("token_type_ids",) if self.family.uses_token_type_ids else ()))
            self.runtime = load_runtime(
                lambda: self.st_model, self.backend_name, resolved.path, names, compute_dtype=self.runtime_dtype
            )

    # ----------------------------------------------------------------------------------------- model
    @property
    def st_model(self) -> Any:
        """The model as a real ``SentenceTransformer`` (the trainer, exports and sentence-transformers' API need one).

        After a light load (:mod:`e2rank_core.st_folder`) it is loaded on first access, which imports
        sentence-transformers, and from then on it runs the forward pass too: the weights are held once.
        """
        if self._st_model is None:
            with self._st_lock:
                if self._st_model is None:
                    model = self._load_sentence_transformer()
                    model.eval()
                    self._st_model = model  # set before dropping the light module: see ``encoder``
                    self._light = None
        return self._st_model

    @property
    def encoder(self) -> Any:
        """The SentenceTransformer once loaded, else the light module (tokenizer and settings only, from a cached
        export: the forward pass is then ``runtime``)."""
        light = self._light  # read first: st_model sets _st_model before it clears _light
        return self._st_model if self._st_model is not None else light

    @property
    def light_loaded(self) -> bool:
        """True while the forward pass runs without sentence-transformers (see :mod:`e2rank_core.st_folder`)."""
        return self._st_model is None

    @property
    def torch_model_loaded(self) -> bool:
        """False while no PyTorch model is held: an exported backend running from its cached export (issue #20).

        ``st_model`` still loads one on first access (or when the export has to be made).
        """
        return self._st_model is not None or isinstance(self._light, StFolderEncoder)

    @property
    def dtype(self) -> torch.dtype | None:
        """The dtype of the model's weights (float32 for the exported graphs' inputs and outputs)."""
        return self.encoder.dtype

    @property
    def prompts(self) -> dict[str, str]:
        """The folder's sentence-transformers prompts (``query``, ``document``, ...)."""
        return dict(getattr(self.encoder, "prompts", None) or {})

    # ----------------------------------------------------------------------------------------- tokens
    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning(message)

    def plain_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """User text to ids, special-token strings split into ordinary tokens, nothing added."""
        if not texts:
            return []
        # verbose=False: over-long texts are expected here; the truncation policy handles them
        encoded = self.tokenizer(list(texts), add_special_tokens=False, split_special_tokens=True, verbose=False)
        return [list(ids) for ids in encoded["input_ids"]]

    def tokenize_for_cutting(self, texts: Sequence[str]) -> list[TokenizedText]:
        """User texts with the character end of every token, from one batched tokenizer call."""
        if not texts:
            return []
        offsets = self.tokenizer(
            list(texts), add_special_tokens=False, split_special_tokens=True, return_offsets_mapping=True, verbose=False
        )["offset_mapping"]
        return [TokenizedText(t, [end for _, end in spans]) for t, spans in zip(texts, offsets, strict=True)]

    def truncate_text(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """Cut ``text`` after its first ``max_tokens`` tokens, on a character boundary."""
        tokenized = self.tokenize_for_cutting([text])[0]
        return tokenized.cut(max(0, max_tokens)), len(tokenized) > max(0, max_tokens)

    def encode_texts(self, texts: Sequence[str], *, kind: str) -> list[EncodedInput]:
        """Documents or retrieval queries (already formatted) to model inputs, truncated to the token budget."""
        limit = self.max_document_tokens if kind == "document" else min(self.max_document_tokens, self.max_query_tokens)
        cut = prepare_documents(texts) if kind == "document" else list(texts)
        body_limit = limit - self.family.text_overhead
        results = [
            EncodedInput(self.family.wrap_text(ids[:body_limit]), text, len(ids) > body_limit)
            for text, ids in zip(cut, self.plain_ids(cut), strict=True)
        ]
        if any(r.truncated for r in results):
            self._warn_once(
                kind,
                f"e2rank: some {kind} texts are longer than {limit} tokens and were truncated to their first "
                f"{limit} tokens (set max_document_tokens / max_query_tokens to change this).",
            )
        return results

    # ----------------------------------------------------------------------------------------- prompt
    def encode_prompt(self, query: str, documents: Sequence[str]) -> EncodedInput:
        """The listwise prompt, fitted to ``max_prompt_tokens`` (policy: :mod:`e2rank_core.prompt_fitting`)."""
        query_tokens, *doc_tokens = self.tokenize_for_cutting([query, *prepare_documents(documents)])
        fitted = fit_prompt(
            query_tokens,
            doc_tokens,
            max_prompt_tokens=self.max_prompt_tokens,
            max_query_tokens=self.max_query_tokens,
            overhead=self.family.prompt_overhead,
            encode=lambda content: self.plain_ids([content])[0],
        )
        if fitted.truncated:
            self._warn_once(
                "prompt",
                f"e2rank: the listwise prompt exceeded {self.max_prompt_tokens} tokens; documents inside the prompt "
                "were shortened to an equal token share so that all of them still appear "
                "(set max_prompt_tokens to change this).",
            )
        text = self.family.prompt_text(listwise_prompt_content(fitted.query, fitted.documents))
        return EncodedInput(self.family.wrap_prompt(fitted.content_ids), text, fitted.truncated)

    # ----------------------------------------------------------------------------------------- forward
    @torch.inference_mode()
    def embed_ids(
        self, sequences: Sequence[Sequence[int]], *, batch_size: int = 32, show_progress_bar: bool = False
    ) -> np.ndarray:
        """Forward passes over token ids, length-sorted batches (:func:`length_batches`), L2-normalised float32."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        out = np.zeros((len(sequences), self.dimension), dtype=np.float32)
        if not sequences:
            return out
        cpu = self.device.split(":")[0] == "cpu"
        batches = length_batches(
            [len(s) for s in sequences],
            batch_size,
            padding_limit=CPU_PADDING_LIMIT if cpu else None,
            max_tokens=CPU_MAX_BATCH_TOKENS if cpu else None,
        )
        iterator: Any = batches
        if show_progress_bar:
            from tqdm.auto import tqdm

            iterator = tqdm(batches, desc="e2rank: embedding", unit="batch")
        for batch in iterator:
            features = self.pad_batch([sequences[i] for i in batch])
            if self.runtime is not None:
                out[batch] = self.runtime({k: v.numpy() for k, v in features.items()})
                continue
            embeddings = self.encoder(features)["sentence_embedding"]
            out[batch] = embeddings.float().cpu().numpy()
        return l2_normalize(out)

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> dict[str, torch.Tensor]:
        """Pad on the family's side; the trainer's collator calls this too, so training sees inference's batches."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.family.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            n = len(seq)
            span = slice(width - n, width) if self.family.padding_side == "left" else slice(0, n)
            ids[row, span] = torch.tensor(seq, dtype=torch.long)
            mask[row, span] = 1
        features = {"input_ids": ids, "attention_mask": mask}
        if self.family.uses_token_type_ids:
            features["token_type_ids"] = torch.zeros_like(ids)
        return {k: v.to(self.encoder.device) for k, v in features.items()}
