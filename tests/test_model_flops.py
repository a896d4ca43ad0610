import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner

from slim.model.encoder import Encoder, EncoderConfig
from slim.model.flops import encoder_gflops, person_mask_with_share, samples_per_second


def test_tiny_encoder_flops_match_hand_count():
    # 1 layer, D 8, 1 head, no registers, GELU MLP 4x, T 8 -> N = 1 + 25 tokens
    cfg = EncoderConfig(dim=8, depth=1, heads=1, registers=0, ffn="mlp")
    n, d = 26, 8
    macs = 25 * 24 * d                      # patch embedding (24 = 8 frames x 3)
    macs += n * d * 3 * d + n * d * d       # qkv, proj
    macs += 2 * n * n * d                   # q k^T, attn v
    macs += 2 * n * d * 4 * d               # MLP
    assert encoder_gflops(Encoder(cfg), 8) * 1e9 == pytest.approx(2 * macs)


def test_paper_sizes_cost_convention():
    assert encoder_gflops(Encoder(EncoderConfig()), 64) == pytest.approx(2.94, abs=0.01)
    assert 2 * encoder_gflops(Encoder(EncoderConfig.mamp()), 120) == pytest.approx(28.1, abs=0.1)


def test_counting_restores_fused_attention_and_throughput_runs():
    enc = Encoder(EncoderConfig.tiny())
    encoder_gflops(enc, 16)
    assert all(b.attn.fused for b in enc.blocks)
    pm = person_mask_with_share(4, 0.5)
    assert pm.sum().item() == 6
    assert samples_per_second(enc, 16, pm, repeats=1, warmup=0) > 0


def test_cli_flops_with_dataset_average(tmp_path):
    from slim.eval.cmd_flops import flops

    table = pa.table({"num_persons": pa.array([1, 2, 1, 1], pa.int8()),
                      "xsub_test": pa.array([True, True, False, False])})
    table = table.replace_schema_metadata({b"slim.benchmarks": b'["xsub"]', b"slim.dataset": b"synthetic"})
    pq.write_table(table, tmp_path / "manifest.parquet")
    out = tmp_path / "flops.json"
    res = CliRunner().invoke(flops, ["--data", str(tmp_path), "--dim", "64", "--depth", "2", "--heads", "2",
                                     "--json", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads(out.read_text())["metrics"]
    assert m["gflops_two_person"] == pytest.approx(2 * m["gflops_person"])
    assert m["gflops_avg_all"] == pytest.approx(1.25 * m["gflops_person"])
    assert m["gflops_avg_xsub_test"] == pytest.approx(1.5 * m["gflops_person"])
    assert m["gflops_mamp"] == pytest.approx(28.1, abs=0.1)
    bad = CliRunner().invoke(flops, ["--data", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0


def test_flops_of_a_run_measures_its_architecture(tmp_path):
    from click.testing import CliRunner

    from slim.eval.cmd_flops import flops
    from slim.model.io import save_encoder
    from slim.train import config as C

    run = tmp_path / "run"
    run.mkdir()
    cfg = C.resolve("cpu-smoke")
    (run / "config.toml").write_text(C.to_toml(cfg))
    res = CliRunner().invoke(flops, ["--run", str(run), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    import json
    fig = json.loads((tmp_path / "r.json").read_text())
    want = encoder_gflops(Encoder(cfg.model.encoder), cfg.pipeline.global_len)
    assert fig["metrics"]["gflops_person"] == pytest.approx(want)
    assert fig["config"]["ours"]["dim"] == cfg.model.encoder.dim != EncoderConfig().dim
    save_encoder(tmp_path / "e.pt", Encoder(EncoderConfig.tiny()))
    res = CliRunner().invoke(flops, ["--encoder", str(tmp_path / "e.pt"), "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "e.json").read_text())["config"]["ours"]["dim"] == EncoderConfig.tiny().dim
    bad = CliRunner().invoke(flops, ["--run", str(tmp_path)])
    assert bad.exit_code == 2 and "not a run folder" in " ".join(bad.output.split())
