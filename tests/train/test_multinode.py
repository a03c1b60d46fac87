"""Training on several machines: ``train.nodes``, ``train.rdzv_endpoint`` and ``train.rdzv_id``.

The parameters are checked in one line each and turned into the ``torchrun --nnodes`` command
line (fast tests). The slow test starts the stage twice, as a batch system starts it once on each
of two machines, here both on 127.0.0.1 with gloo on the CPU: each start relaunches itself under
torchrun, the two meet at the c10d rendezvous, and the 2-process run must reach the single-process
result, as the one-machine DDP test in ``test_train.py`` checks. Another starts two gloo processes
that see different checkpoints (as machines without a shared filesystem would): both must stop.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nucvn.core.errors import NucvnError
from nucvn.train import TrainConfig
from nucvn.train.distributed import DistContext, check_same_on_all_ranks, check_world, torchrun_command
from trainutil import DDP_TRAIN, assert_matches_one_process, even_shards, stage_command, stage_env, write_params

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("values", "pattern"), [
    ({"nodes": 0}, r"^train\.nodes must be >= 1, got 0$"),
    ({"nodes": 2}, r"^train\.nodes=2 needs train\.rdzv_endpoint: the host:port where the machines meet"),
    ({"nodes": 2, "rdzv_endpoint": "node001"},
     r"^train\.rdzv_endpoint must be host:port \(e\.g\. node001:29500\), got 'node001'$"),
    ({"nodes": 2, "rdzv_endpoint": ":29500"}, r"^train\.rdzv_endpoint must be host:port"),
    ({"nodes": 2, "rdzv_endpoint": "node001:port"}, r"^train\.rdzv_endpoint must be host:port"),
    ({"nodes": 2, "rdzv_endpoint": "node001:70000"}, r"^train\.rdzv_endpoint must be host:port"),
    ({"rdzv_endpoint": "node001"}, r"^train\.rdzv_endpoint must be host:port"),  # a typo is caught on one machine
    ({"nodes": 2, "rdzv_endpoint": "node001:29500", "rdzv_id": ""}, r"^train\.rdzv_id must be a job id"),
])
def test_bad_node_parameters_are_named(values: dict[str, Any], pattern: str) -> None:
    with pytest.raises(NucvnError, match=pattern):
        TrainConfig(**values).validate()


def test_good_node_parameters_pass() -> None:
    TrainConfig(nodes=2, gpus=4, rdzv_endpoint="node001:29500").validate()
    TrainConfig(nodes=3, rdzv_endpoint="10.0.0.7:1234", rdzv_id="job-42").validate()
    TrainConfig(nodes=2, rdzv_endpoint="[::1]:29500").validate()


def test_torchrun_command_line() -> None:
    """One machine keeps ``--standalone``; several meet at the c10d rendezvous."""
    run = [sys.executable, "-m", "torch.distributed.run"]
    assert torchrun_command("stages/train.py", ["--no-progress"], 4) == \
        [*run, "--standalone", "--nproc_per_node=4", "stages/train.py", "--no-progress"]
    assert torchrun_command("stages/train.py", ["--no-progress"], 4, nodes=2, rdzv_endpoint="node001:29500",
                            rdzv_id="job7") == \
        [*run, "--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d", "--rdzv_endpoint=node001:29500",
         "--rdzv_id=job7", "stages/train.py", "--no-progress"]


def test_a_multi_machine_configuration_refuses_to_train_alone() -> None:
    alone = DistContext(rank=0, world=1, local_rank=0, device=torch.device("cpu"))
    with pytest.raises(NucvnError, match=r"^train\.nodes=2 with train\.gpus=1 needs 2 processes: run stages/train\.py "
                                         r"on each of the 2 machines"):
        check_world(2, 1, alone)
    with pytest.raises(NucvnError, match=r"^train\.gpus=2 needs 2 processes"):
        check_world(1, 2, alone)
    check_world(1, 1, alone)
    check_world(2, 1, DistContext(rank=1, world=2, local_rank=0, device=torch.device("cpu")))


def test_fingerprint_ignores_where_the_machines_meet() -> None:
    """A preempted job resumes its checkpoint on other machines (another rendezvous host), and a
    one-machine checkpoint keeps the fingerprint it had before ``nodes`` existed."""
    two = TrainConfig(nodes=2, rdzv_endpoint="node001:29500").fingerprint({}, {})
    assert TrainConfig(nodes=2, rdzv_endpoint="node017:29400", rdzv_id="again").fingerprint({}, {}) == two
    assert TrainConfig().fingerprint({}, {}) != two
    launch_keys = ("workers", "nodes", "rdzv_endpoint", "rdzv_id")
    before = {k: v for k, v in asdict(TrainConfig()).items() if k not in launch_keys}
    blob = json.dumps({"config": before | {"model_kwargs": TrainConfig().kwargs}, "data": {}, "architecture": {}},
                      sort_keys=True, default=str).encode()
    assert TrainConfig().fingerprint({}, {}) == hashlib.sha256(blob).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_two_nodes_of_one_process_match_one_process(tmp_path: Path) -> None:
    """Two starts of the stage with ``nodes: 2, gpus: 1`` meet at 127.0.0.1 and write one set of
    outputs (rank 0), equal to the single-process run's up to float summation order. Both write to
    the same folder, as machines sharing the repository's filesystem do."""
    shards = even_shards(tmp_path, ranks=2)
    one = write_params(tmp_path / "one.yaml", **DDP_TRAIN)
    subprocess.run(stage_command(one, shards, tmp_path / "one"), cwd=REPO, env=stage_env(), check=True,
                   capture_output=True, timeout=300)

    two = write_params(tmp_path / "two.yaml", nodes=2, gpus=1, rdzv_endpoint=f"127.0.0.1:{_free_port()}",
                       rdzv_id="test-two-nodes", **DDP_TRAIN)
    nodes = [subprocess.Popen(stage_command(two, shards, tmp_path / "two"), cwd=REPO, env=stage_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
             for _ in range(2)]
    try:
        logs = [node.communicate(timeout=300)[0].decode() for node in nodes]
    finally:
        for node in nodes:  # a node whose partner failed waits for it at the rendezvous: end both
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.communicate()
    assert [node.returncode for node in nodes] == [0, 0], "\n\n".join(logs)
    assert sum("epoch 2" in log for log in logs) == 1, logs  # rank 0 prints, on one of the two nodes
    assert_matches_one_process(tmp_path / "one", tmp_path / "two", processes=2)



def _different_checkpoints(rank: int, init: str, out: Path) -> None:
    """One of two gloo processes with the same fingerprint but a different resume epoch each
    (rank 0: 3, rank 1: 0), as when the second machine cannot see the first one's checkpoint;
    writes what it raised."""
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    ctx = DistContext(rank=rank, world=2, local_rank=rank, device=torch.device("cpu"))
    try:
        check_same_on_all_ranks({"the fingerprint": 7, "the epochs done in ckpt/checkpoint.pt": 3 - 3 * rank}, ctx)
        (out / f"rank{rank}").write_text("passed")
    except NucvnError as exc:
        (out / f"rank{rank}").write_text(str(exc))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ranks_that_see_different_checkpoints_all_stop(tmp_path: Path) -> None:
    """Every rank raises (none goes on to train other epochs from other weights), naming what
    differs and the shared filesystem the machines need."""
    mp.spawn(_different_checkpoints, args=(f"file://{tmp_path / 'store'}", tmp_path), nprocs=2)
    for rank in range(2):
        assert (tmp_path / f"rank{rank}").read_text() == (
            "the epochs done in ckpt/checkpoint.pt differs between the processes: every machine must see the same "
            "files; put the repository on a filesystem all machines share")
