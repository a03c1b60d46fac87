"""Plain DDP helpers: process-group setup from torchrun's environment, the epoch sampler, sums
across ranks, and the one-line ``torchrun`` relaunch (one machine or several).

No framework: ``torchrun --standalone --nproc_per_node=N script`` sets ``RANK``, ``LOCAL_RANK``
and ``WORLD_SIZE``; :func:`init_distributed` reads them (NCCL on CUDA, gloo on CPU). On several
machines the same script is started once per machine (by the batch system, e.g. ``srun``) and
each start runs ``torchrun --nnodes=M --rdzv_backend=c10d --rdzv_endpoint=host:port``: torchrun's
own rendezvous gathers the M machines and numbers their processes, ``RANK`` globally (0 to
``M * N - 1``) and ``LOCAL_RANK`` within a machine (which picks the GPU). Batch size is
*global*: each of the N ranks takes ``batch_size / N`` events of every global batch, and
:class:`EpochSampler` interleaves one permutation across ranks, so step ``k`` of an N-process run
sees exactly the events of step ``k`` of the single-process run and the averaged gradients agree.
Metrics are reduced as sums and counts, never as averages of per-rank rates.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler

from nucvn.core.errors import NucvnError

__all__ = ["DeviceName", "DistContext", "EpochSampler", "init_distributed", "all_reduce_sum", "launch_torchrun",
           "resolve_device", "in_torchrun", "torchrun_command", "check_world", "check_same_on_all_ranks"]

DeviceName = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class DistContext:
    """Where this process runs: its rank among ``world`` processes and its torch device."""

    rank: int
    world: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def in_torchrun() -> bool:
    """True when this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def resolve_device(device: DeviceName, local_rank: int) -> torch.device:
    if device not in ("auto", "cpu", "cuda"):
        raise NucvnError(f"train.device must be auto, cpu or cuda, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise NucvnError("train.device is 'cuda' but torch sees no CUDA device; use device: auto or cpu")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def bf16_autocast(device: torch.device) -> bool:
    """Whether to run forward passes on ``device`` in bf16 autocast: on a CUDA device of compute
    capability 8.0 or more (Ampere and later: A100, H100, RTX 30xx on), which has bf16 tensor
    cores. Not on the CPU, and not on older GPUs (V100, T4), where autocast to bf16 either fails or
    is emulated slower than fp32; those train in fp32."""
    return device.type == "cuda" and torch.cuda.get_device_capability(device) >= (8, 0)


def autocast(device: torch.device) -> torch.autocast:
    """The mixed-precision context of every forward pass (training, validation, inference):
    bf16 where :func:`bf16_autocast` says so, disabled (fp32) elsewhere."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16_autocast(device))


def init_distributed(device: DeviceName) -> DistContext:
    """Join the process group torchrun prepared (if any) and pick this rank's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=dev)


def all_reduce_sum(values: npt.ArrayLike, ctx: DistContext) -> npt.NDArray[np.float64]:
    """Sum a float64 array over all ranks (identity in a single process)."""
    arr = np.asarray(values, dtype=np.float64)
    if not ctx.distributed:
        return arr
    t = torch.from_numpy(arr.copy()).to(ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.cpu().numpy()


class EpochSampler(DistributedSampler[int]):
    """The training order of one epoch: a function of ``(seed, epoch)`` only, split across ranks.

    Without ``weights``: a permutation (as :class:`DistributedSampler` draws it). With ``weights``
    (``balance: sampler``): ``n`` draws with replacement proportional to ``weights``. Either way
    the sequence comes from a ``torch.Generator`` seeded with ``seed + epoch``, so a resumed run
    sees the same order as an uninterrupted one, and rank ``r`` takes positions ``r, r + N, ...``
    (padded by wrapping to a multiple of ``N``, like :class:`DistributedSampler`).
    """

    def __init__(self, dataset: Sized, *, seed: int, rank: int, world: int,
                 weights: torch.Tensor | None = None) -> None:
        # DistributedSampler only takes len(dataset) (a range of positions here); its stubs ask for a Dataset
        super().__init__(dataset, num_replicas=world, rank=rank, shuffle=True, seed=seed,  # type: ignore[arg-type]
                         drop_last=False)
        self.weights = None if weights is None else weights.double()

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        n = len(self.dataset)  # type: ignore[arg-type]
        if self.weights is None:
            order = torch.randperm(n, generator=g)
        else:
            order = torch.multinomial(self.weights, n, replacement=True, generator=g)
        indices = order.tolist()
        pad = self.total_size - len(indices)
        if pad > 0:
            indices += (indices * (pad // max(len(indices), 1) + 1))[:pad]
        return iter(indices[self.rank : self.total_size : self.num_replicas])


def torchrun_command(script: str, args: Sequence[str], nproc: int, *, nodes: int = 1, rdzv_endpoint: str = "",
                     rdzv_id: str = "nucvn") -> list[str]:
    """The ``torchrun`` command line that runs ``script args`` as ``nproc`` processes on this machine.

    One machine: ``--standalone`` (a private rendezvous on a free port). ``nodes > 1``: every
    machine runs this same command and torchrun's c10d rendezvous at ``rdzv_endpoint`` (the host
    that serves it must be one of the machines) waits for all ``nodes`` of job ``rdzv_id``.
    """
    if nodes > 1:
        launch = [f"--nnodes={nodes}", f"--nproc_per_node={nproc}", "--rdzv_backend=c10d",
                  f"--rdzv_endpoint={rdzv_endpoint}", f"--rdzv_id={rdzv_id}"]
    else:
        launch = ["--standalone", f"--nproc_per_node={nproc}"]
    return [sys.executable, "-m", "torch.distributed.run", *launch, script, *args]


def launch_torchrun(script: str, args: Sequence[str], nproc: int, *, nodes: int = 1, rdzv_endpoint: str = "",
                    rdzv_id: str = "nucvn") -> int:
    """Run :func:`torchrun_command` and return its exit status (the first failing process's)."""
    return subprocess.call(torchrun_command(script, args, nproc, nodes=nodes, rdzv_endpoint=rdzv_endpoint,
                                            rdzv_id=rdzv_id))


def check_world(nodes: int, gpus: int, ctx: DistContext) -> None:
    """Refuse a configuration of ``nodes`` × ``gpus`` processes run as a single process (e.g.
    :func:`nucvn.train.train` called directly): it would silently train alone."""
    if nodes * gpus > 1 and not ctx.distributed:
        if nodes == 1:
            raise NucvnError(f"train.gpus={gpus} needs {gpus} processes: run stages/train.py, which relaunches "
                             "itself with torchrun, or set train.gpus: 1")
        raise NucvnError(f"train.nodes={nodes} with train.gpus={gpus} needs {nodes * gpus} processes: run "
                         f"stages/train.py on each of the {nodes} machines (it relaunches itself with torchrun), "
                         "or set train.nodes: 1")


def check_same_on_all_ranks(values: Mapping[str, int], ctx: DistContext) -> None:
    """Raise on every rank, naming the first of ``values`` (name: integer) that not all ranks share.

    On several machines each rank reads params.yaml, the shards and the checkpoint from its own
    view of the files. A machine that sees other files (no shared filesystem, a stale copy) would
    otherwise train other epochs from other weights or data, silently: gradients still average.
    """
    if not ctx.distributed or not values:
        return
    t = torch.tensor([v for value in values.values() for v in (value, -value)], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    for k, name in enumerate(values):
        if int(t[2 * k]) != -int(t[2 * k + 1]):
            raise NucvnError(f"{name} differs between the processes: every machine must see the same files; put the "
                             "repository on a filesystem all machines share")
