"""Cube's training-side client: asynchronous multi-level checkpoints and determinism helpers.

    import cube
    ckpt = cube.Checkpointer()          # job, rank, paths from the CUBE_* / torch environment
    state = ckpt.load_latest()          # None, or the saved state plus state["__cube__"]
    ckpt.save(step, {"model": model.state_dict(), "optimizer": opt.state_dict(), ...})
    ckpt.wait(); ckpt.close()
    cube.report_progress(step, loss=loss)  # to the node agent, when one launched this rank

A trainer that checkpoints through torch.distributed.checkpoint (torch >= 2.4) keeps doing so,
with Cube as the storage: `dcp.save(state, checkpoint_id=step, storage_writer=cube.dcp.Writer())`
and `dcp.load(state, storage_reader=cube.dcp.Reader())` (see cube/dcp.py).

The file formats are docs/checkpoint-format.md.
"""

from . import determinism
from .checkpointer import Checkpointer
from .daemon_client import DaemonClient
from .determinism import DataPosition, ShuffledSampler, capture_rng, restore_rng, seed_everything
from .errors import CheckpointError, CheckpointWarning
from .flatten import FlatState, flatten_state, unflatten_state
from .manifest import read_manifest, read_record
from .progress import report_progress, report_restored
from .safetensors_io import decode_shard, encode_shard

__all__ = [
    "Checkpointer",
    "CheckpointError",
    "CheckpointWarning",
    "DaemonClient",
    "DataPosition",
    "FlatState",
    "ShuffledSampler",
    "capture_rng",
    "decode_shard",
    "determinism",
    "encode_shard",
    "flatten_state",
    "read_manifest",
    "read_record",
    "report_progress",
    "report_restored",
    "restore_rng",
    "seed_everything",
    "unflatten_state",
]


def __getattr__(name: str) -> object:
    # `cube.dcp` (the torch.distributed.checkpoint backend) needs torch >= 2.4: it is imported on
    # first use, so `import cube` keeps working on an older torch.
    if name == "dcp":
        import importlib

        return importlib.import_module(".dcp", __name__)
    raise AttributeError(f"module 'cube' has no attribute {name!r}")
