"""Which autocast a run gets: ``auto`` follows the CPU's native bfloat16, bad names are one line."""
import pytest
import torch

from avsep.errors import AvsepError
from avsep.training import engine
from avsep.training.engine import auto_precision, cpu_has_native_bf16, resolve_precision

CPU = torch.device("cpu")


def _cpuinfo(tmp_path, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 {flags}\n\n")
    return path


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f avx512_bf16"))
    assert cpu_has_native_bf16(_cpuinfo(tmp_path, "amx_tile amx_bf16"))
    assert not cpu_has_native_bf16(_cpuinfo(tmp_path, "avx512f avx512bw"))
    assert not cpu_has_native_bf16(tmp_path / "missing"), "unknown: no claim of native bf16"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp32")])
def test_auto_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch, native, expected):
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda *a: native)
    assert auto_precision(CPU) == expected
    precision = resolve_precision("auto", CPU)
    assert precision.name == expected and precision.dtype == (torch.bfloat16 if native else None)
    assert auto_precision(torch.device("cuda")) == "fp32", "auto chooses for CPUs only"


def test_bf16_autocast_runs_a_step_on_cpu():
    precision = resolve_precision("bf16", CPU)
    layer = torch.nn.Conv2d(1, 2, 3)
    with precision.autocast():
        out = layer(torch.randn(1, 1, 8, 8))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32, "weights and their gradients stay fp32"


def test_an_unknown_precision_is_one_clear_line():
    with pytest.raises(AvsepError, match=r"--precision 'fp8': choose one of fp32, bf16, fp16 or auto"):
        resolve_precision("fp8", CPU)


@pytest.mark.parametrize("command, default", [(["train", "--data", "d", "--out", "o"], "fp32"),
                                              (["quickstart"], "auto")])
def test_the_clis_take_auto_and_keep_their_defaults(command, default):
    from avsep.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(command).precision == default
    assert parser.parse_args(command + ["--precision", "auto"]).precision == "auto"
