"""Where the work runs: devices and the torchrun processes (training and prediction alike).

One process per GPU (or several CPU processes) is started by ``torchrun``, which sets
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; :func:`setup_distributed` then joins the process
group (NCCL on GPUs, gloo on CPUs). Each process trains on its share of the patches
(``DistributedSampler``) and DistributedDataParallel averages the gradients, so all
processes hold the same weights; rank 0 alone writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional, Sequence

import torch

from deepetpicker.errors import DeepETPickerError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a run: ``rank`` of ``world_size``; ``owned`` when this call
    created the process group (and must destroy it)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owned: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` from the torchrun environment (0, 1, 0 without it)."""
    def read(name: str, default: int) -> int:
        value = os.environ.get(name, "")
        try:
            return int(value) if value.strip() else default
        except ValueError:
            raise DeepETPickerError(
                f"Environment variable {name}={value!r} is not a number; start several "
                f"processes with torchrun, which sets it.") from None

    world = read("WORLD_SIZE", 1)
    return read("RANK", 0), world, read("LOCAL_RANK", 0)


def resolve_device(spec: Optional[str], gpu_ids: Sequence[int] = (0,),
                   local_rank: int = 0, distributed: bool = False) -> torch.device:
    """The torch device for ``auto | cpu | cuda | cuda:N`` (and the config's ``gpu_ids``).

    ``auto`` is the first listed GPU when CUDA is available, else the CPU. ``cuda`` without an
    index is ``gpu_ids[0]``. When several processes run, each takes ``gpu_ids[local_rank]``
    (or GPU ``local_rank`` when fewer ids are listed), whatever index was given.
    """
    spec = (spec or "auto").strip().lower()
    if spec == "cpu":
        return torch.device("cpu")
    available = torch.cuda.is_available()
    if spec == "auto" and not available:
        return torch.device("cpu")
    if spec == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeepETPickerError("device 'mps' requested but Apple's Metal backend is not "
                                    "available; use --device cpu.")
        return torch.device("mps")
    if spec not in ("auto", "cuda") and not spec.startswith("cuda:"):
        raise DeepETPickerError(f"device {spec!r} is not known; use auto, cpu, cuda or cuda:N.")
    if not available:
        raise DeepETPickerError(
            f"device {spec!r} requested but PyTorch sees no CUDA GPU (this PyTorch build: "
            f"{torch.__version__}). Use --device cpu, or install a CUDA build of PyTorch and "
            f"check the driver with nvidia-smi.")
    count = torch.cuda.device_count()
    if spec.startswith("cuda:") and not distributed:
        index = int(spec.split(":", 1)[1])
    else:  # one process per GPU: process local_rank takes the local_rank-th listed GPU
        ids = list(gpu_ids) or [0]
        index = ids[local_rank] if local_rank < len(ids) else local_rank
    if index >= count:
        raise DeepETPickerError(
            f"GPU {index} requested (device {spec!r}, gpu_ids {list(gpu_ids)}) but this machine "
            f"has {count} GPU(s), numbered 0-{count - 1}. Change gpu_ids or --device.")
    return torch.device("cuda", index)


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group when torchrun started several processes."""
    import torch.distributed as dist

    rank, world, local = env_world()
    if world <= 1:
        return DistInfo()
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), local, owned=False)
    if not dist.is_available():
        raise DeepETPickerError("WORLD_SIZE > 1 but this PyTorch has no torch.distributed; "
                                "train with one process.")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    # rank 0 validates alone while the others wait: allow long validations
    dist.init_process_group(backend=backend, rank=rank, world_size=world,
                            timeout=timedelta(hours=3))
    return DistInfo(rank, world, local, owned=True)


def teardown_distributed(info: DistInfo) -> None:
    """Leave the process group if :func:`setup_distributed` created it."""
    import torch.distributed as dist

    if info.owned and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op in a single process)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def mean_over_processes(value: float, info: DistInfo, device: torch.device) -> float:
    """The mean of ``value`` over all processes (the value itself in a single process)."""
    if not info.enabled:
        return float(value)
    import torch.distributed as dist

    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size
