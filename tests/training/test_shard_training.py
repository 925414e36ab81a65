"""Training from tar shards: the same loop, bit-exact resume, and torchrun with loader workers."""
import subprocess

import pytest

from avsep.config import Config, RunSettings
from avsep.data.shard_writer import write_shards
from avsep.models.checkpoint import load_checkpoint
from avsep.training.trainer import Trainer
from tests.conftest import PYTHON
from tests.training.test_train import TINY, log_steps, same_weights, weights

CFG = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8, batch_size=4, epoch_size=16,
                                     epochs=3, val_pairs=4, val_every=4, compose_prob=0.5)


@pytest.fixture(scope="module")
def shard_dir(tiny_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("train_shards")
    write_shards(tiny_dataset, out, shard_mb=0.7, progress=False)
    return out


def fit(shards, run, **settings):
    trainer = Trainer(CFG, shards / "train.json", shards / "val.json", run,
                      RunSettings(workers=0, progress=False, shuffle_buffer=4, **settings))
    return trainer.fit()


def test_shard_fed_training_resumes_bit_for_bit(shard_dir, tmp_path):
    assert fit(shard_dir, tmp_path / "full").step == CFG.total_steps == 12
    fit(shard_dir, tmp_path / "split", max_steps=6)  # stops mid-epoch
    resumed = Trainer(CFG, shard_dir / "train.json", shard_dir / "val.json", tmp_path / "split",
                      RunSettings(workers=0, progress=False, shuffle_buffer=4),
                      resume_state=load_checkpoint(tmp_path / "split/last.pt"))
    assert resumed.fit().step == 12
    assert same_weights(weights(tmp_path / "full/last.pt"), weights(tmp_path / "split/last.pt"))
    state = load_checkpoint(tmp_path / "full/best.pt")
    assert state["train_manifest"]["count"] == 9 and state["val_sdr"] is not None


@pytest.mark.slow
def test_torchrun_trains_from_shards_with_loader_workers(shard_dir, tmp_path):
    out = tmp_path / "run"
    tiny = [a for a in TINY if a not in ("--workers", "0")]
    result = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                             "avsep", "train", "--shards", str(shard_dir), "--out", str(out), *tiny, "--workers", "1",
                             "--shuffle-buffer", "4", "--max-steps", "8", "--precision", "fp16", "--sync-bn",
                             "--compile"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert log_steps(out) == list(range(1, 9)) and (out / "best.pt").exists()
    for note in ("fp16: float16 autocast needs CUDA", "--sync-bn: SyncBatchNorm needs CUDA", "--compile: torch.compile"):
        assert result.stderr.count(note) == 1, f"one note, from rank 0: {note}"
