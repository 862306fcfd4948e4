"""Arithmetic precision of the network's forward passes: ``fp32``, ``bf16`` or ``auto``.

On a CPU, ``bf16`` runs the convolutions under ``torch.autocast("cpu", torch.bfloat16)``,
which PyTorch's oneDNN kernels do natively on CPUs with AVX-512 BF16 or AMX (recent AMD EPYC
and Intel Xeon) and emulate slowly elsewhere; ``auto`` takes bf16 where the CPU does it
natively and fp32 elsewhere. On a GPU every choice but ``fp32`` is float16 mixed precision,
as before. The class probabilities are computed in float32 either way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from deepetpicker.errors import DeepETPickerError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (oneDNN says so)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(choice: Optional[str], device_type: str) -> str:
    """The precision a forward pass runs in: ``fp32``, ``bf16`` (CPU) or ``fp16`` (GPU mixed
    precision), from the user's ``choice`` (None: the device's default, float16 mixed
    precision on a GPU and fp32 on the CPU)."""
    if choice is None:
        return "fp16" if device_type == "cuda" else "fp32"
    choice = str(choice).lower()
    if choice not in PRECISIONS:
        raise DeepETPickerError(f"precision {choice!r} is not known; use "
                                f"{', '.join(PRECISIONS)}.")
    if device_type == "cuda":
        return "fp32" if choice == "fp32" else "fp16"
    if choice == "auto":
        return "bf16" if native_bf16() else "fp32"
    return choice


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The dtype ``torch.autocast`` runs in for a resolved precision, or None for fp32."""
    import torch

    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
