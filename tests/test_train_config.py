"""Config resolution, TOML round trips, schedules and parameter groups."""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from slim.train import config as C
from slim.train.configtools import ConfigError, flatten, load_toml, parse_set
from slim.train.param_groups import build_param_groups, drop_last_layer_grads, set_step_values
from slim.train.schedules import cosine, linear_then_constant
from slim.train.trainer import make_schedules


@pytest.mark.parametrize("preset", list(C.PRESETS))
def test_presets_round_trip_through_toml(preset):
    cfg = C.resolve(preset)
    assert C.from_toml_text(C.to_toml(cfg, "header")) == cfg


def test_defaults_are_the_paper_recipe():
    cfg = C.resolve("paper")
    assert cfg.optim.base_lr == 2e-4 and cfg.optim.min_lr == 1e-6 and cfg.optim.clip_grad == 3.0
    assert (cfg.optim.weight_decay, cfg.optim.weight_decay_end) == (0.04, 0.2)
    assert (cfg.schedule.epochs, cfg.schedule.epoch_steps, cfg.schedule.warmup_epochs) == (150, 1250, 20)
    assert (cfg.schedule.momentum_teacher, cfg.schedule.teacher_temp_start, cfg.schedule.teacher_temp) == (0.994, 0.04, 0.07)
    assert cfg.data.global_batch == 768
    assert cfg.model.encoder.depth == 8 and cfg.model.head.prototypes == 65536
    assert math.isclose(cfg.optim.peak_lr(768), 2e-4 * math.sqrt(768 / 1024))


def test_overrides_order_and_types(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[optim]\nbase_lr = 5e-4\n[model.encoder]\ndepth = 3\n[pipeline]\nmasking = "random"\n')
    cfg = C.resolve("cpu-smoke", load_toml(f), parse_set(["optim.base_lr=1e-2", "pipeline.local_counts=[2,1,1]",
                                                           "run.compile=true", "model.encoder.ffn=mlp"]))
    assert cfg.optim.base_lr == 1e-2            # --set wins over the file
    assert cfg.model.encoder.depth == 3         # the file wins over the preset
    assert cfg.pipeline.masking == "random"
    assert cfg.pipeline.local_counts == (2, 1, 1) and cfg.run.compile is True
    assert cfg.model.encoder.ffn == "mlp"


@pytest.mark.parametrize("item, words", [
    ("optim.lr=1", "unknown config key 'optim.lr'"),
    ("nosection.x=1", "unknown config key"),
    ("optim.base_lr=abc", "optim.base_lr"),
    ("data.source=tar", "data.source"),
    ("pipeline.masking=blocks", "masking"),
    ("model.encoder=3", "is a section"),
    ("optim.base_lr", "KEY=VALUE"),
])
def test_bad_keys_and_values_are_errors(item, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        C.resolve("cpu-smoke", cli_overrides=parse_set([item]))


def test_bad_toml_names_the_file(tmp_path):
    f = tmp_path / "broken.toml"
    f.write_text("[optim\nbase_lr = 1")
    with pytest.raises(ConfigError, match="broken.toml"):
        load_toml(f)


def test_patch_mismatch_is_caught():
    with pytest.raises(ConfigError, match="patch_t"):
        C.resolve("cpu-smoke", cli_overrides=parse_set(["model.encoder.patch_t=4"]))


def test_incompatible_keys_ignore_runtime_keys():
    a = C.resolve("cpu-smoke")
    b = C.resolve("cpu-smoke", cli_overrides=parse_set(["data.num_workers=3", "run.log_every=7"]))
    assert C.incompatible_keys(a, b) == []
    c = C.resolve("cpu-smoke", cli_overrides=parse_set(["optim.base_lr=0.5"]))
    assert [k for k, _, _ in C.incompatible_keys(a, c)] == ["optim.base_lr"]
    assert flatten(C.replace_runtime(a, b))["data.num_workers"] == 3


def test_cosine_and_ramps():
    s = cosine(1.0, 0.1, total_steps=10, warmup_steps=4)
    assert s.shape == (10,) and s[0] == 0.0 and s[4] == pytest.approx(1.0) and s[-1] == pytest.approx(0.1)
    assert np.all(np.diff(s[:5]) > 0) and np.all(np.diff(s[4:]) <= 0)
    r = linear_then_constant(0.04, 0.07, 3, 6)
    assert r.tolist() == pytest.approx([0.04, 0.05, 0.06, 0.07, 0.07, 0.07])


def test_run_schedules_follow_the_recipe():
    cfg = C.resolve("paper", cli_overrides=parse_set(["schedule.epochs=10", "schedule.epoch_steps=10",
                                                      "schedule.warmup_epochs=2",
                                                      "schedule.teacher_temp_warmup_epochs=3"]))
    s = make_schedules(cfg, 10)
    peak = cfg.optim.peak_lr(768)
    assert s.total_steps == 100
    assert s.lr[0] == 0 and s.lr[20] == pytest.approx(peak) and s.lr.max() == pytest.approx(peak)
    assert s.lr[-1] == pytest.approx(1e-6)
    assert s.weight_decay[0] == pytest.approx(0.04) and s.weight_decay[-1] == pytest.approx(0.2)
    assert s.momentum[0] == pytest.approx(0.994) and s.momentum[-1] == pytest.approx(1.0)
    assert s.teacher_temp[0] == pytest.approx(0.04) and s.teacher_temp[30:].tolist() == pytest.approx([0.07] * 70)
    assert s.last_layer_frozen[:10].all() and not s.last_layer_frozen[10:].any()


def test_param_groups_roles():
    import torch

    from slim.model.slim import SLiM
    cfg = C.resolve("cpu-smoke")
    model = SLiM(cfg.model, torch.Generator().manual_seed(0))
    groups = build_param_groups(model.param_groups_spec())
    by_name = {n: g for g in groups for n in g["names"]}
    trainable = [n for n, p in list(model.student.named_parameters()) if p.requires_grad]
    assert len(by_name) == len(trainable) + sum(1 for _ in model.heads.parameters())
    assert by_name["student.patch_embed.weight"]["lr_mult"] == pytest.approx(0.2)
    assert by_name["student.patch_embed.weight"]["wd_mult"] == 1.0
    for name in ("student.cls_token", "student.register_tokens", "student.mask_token",
                 "student.norm.weight", "student.patch_embed.bias"):
        assert by_name[name]["wd_mult"] == 0.0, name
    assert by_name["heads.glcl.last_layer.weight"]["last_layer"]
    assert not by_name["heads.glcl.mlp.0.weight"]["last_layer"]
    assert not any(n.startswith(("teacher", "teacher_heads")) for n in by_name)

    opt = torch.optim.AdamW(groups, lr=0.0)
    set_step_values(opt, lr=1.0, wd=0.5)
    for g in opt.param_groups:
        assert g["lr"] == pytest.approx(g["lr_mult"]) and g["weight_decay"] == pytest.approx(0.5 * g["wd_mult"])
    for p in model.parameters():
        p.grad = torch.ones_like(p) if p.requires_grad else None
    drop_last_layer_grads(opt)
    assert model.heads["glcl"].last_layer.weight.grad is None
    assert model.heads["glcl"].mlp[0].weight.grad is not None


def test_every_key_is_explained_and_configs_folder_matches_the_presets():
    """Issue 18 item 20: `--print-config --comments` explains every key; configs/<preset>.toml
    is exactly that output and reads back to the preset."""
    from pathlib import Path

    from slim.train import config as C
    from slim.train import configtools
    from slim.train.config_docs import missing_docs

    assert missing_docs(configtools.flatten(C.PretrainConfig()).keys()) == []
    root = Path(__file__).resolve().parent.parent / "configs"
    for preset in C.PRESETS:
        cfg = C.resolve(preset)
        text = C.to_toml(cfg, C.print_header(preset, True), comments=True)
        path = root / f"{preset}.toml"
        assert path.read_text().rstrip() == text.rstrip(), \
            f"{path} is stale: regenerate with slim-train pretrain --preset {preset} --print-config --comments"
        assert C.from_toml_text(path.read_text()) == cfg
        assert "# A_min, the smallest tube area" in text and "Appendix C" in text


def test_cpu_real_preset_fits_short_sequences_and_leaves_the_paper_alone():
    real, demo, paper = C.resolve("cpu-real"), C.resolve("cpu-demo"), C.resolve("paper")
    assert real.pipeline.global_len == 32 and real.pipeline.local_lens == (16, 8)
    assert all(n % real.model.encoder.patch_t == 0 for n in (32, 16, 8))
    # the demo's architecture, with root-relative input coordinates (issue 13)
    assert real.model.encoder == dataclasses.replace(demo.model.encoder, root_relative=True)
    assert real.schedule.epochs * real.schedule.epoch_steps == 1200
    assert paper.pipeline.global_len == 64 and paper.pipeline.local_lens == (32, 16, 8)
    # the small-set fixes are the real preset's; the paper's and the demo's recipes keep
    # Sinkhorn-Knopp, plain heads and coordinates as ingested
    assert real.model.centering == "dino" and real.model.head.batchnorm
    for cfg in (paper, demo):
        assert cfg.model.centering == "sinkhorn" and not cfg.model.head.batchnorm
        assert not cfg.model.encoder.root_relative
