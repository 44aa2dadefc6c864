"""Where a run computes: the device, its precision, and the processes of a torchrun launch."""

from __future__ import annotations

import os

import torch


def init_distributed() -> tuple[int, int]:
    """(world size, rank): under torchrun, joins the process group (NCCL on GPUs, gloo on CPUs)."""
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return world, rank


def pick_precision(name: str, device: torch.device) -> str:
    """`auto`: bf16 autocast where the hardware computes in bf16 natively (recent GPUs; CPUs
    with AVX512-BF16 or AMX: 1.4-1.6x the images/s on 2 cores), fp32 elsewhere, where bf16 is
    emulated and slower than fp32."""
    if name != "auto":
        return name
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":   # torch's own probes (private, hence getattr: absent means no)
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return "bf16" if any(getattr(torch.cpu, p, lambda: False)() for p in probes) else "fp32"
    return "fp32"


def pick_device(name: str) -> torch.device:
    """The device to train on; under torchrun with CUDA, this process's GPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return device


def sum_over_processes(t: torch.Tensor) -> torch.Tensor:
    """`t` summed over the processes of a torchrun launch (itself in a single process): what keeps
    a figure every process must agree on (ADA's probability, LeCam's anchors) the same on all."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        t = t.clone()
        dist.all_reduce(t)
    return t


def process_count() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
