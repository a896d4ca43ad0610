"""The pretraining loop: config -> batches -> SLiM -> AdamW groups -> per-step schedules
-> (bf16 autocast on GPU) -> backward -> last-layer freeze -> clip -> step -> EMA ->
metrics -> checkpoint. The same code runs in one process and under torchrun (DDP).

The step never waits for the device: shapes are static (the collate's masked-token
index), the schedules enter as host floats or 0-dim device tensors, and losses, the
gradient norm and the non-finite / stop flags are read back only at "sync points":
every `run.log_every` steps, at checkpoints and at the end (one readback for the
window; a non-finite loss is reported with the first step and the batch ids it
occurred at).

The run folder is resumed by itself: when it holds a checkpoint of a compatible config,
training continues from it, bit for bit on CPU (the batches are a function of the step,
the RNG states and the optimizer are restored)."""
from __future__ import annotations

import contextlib
import dataclasses
import signal
import socket
import time
from pathlib import Path

import torch

from slim.ingest.versions import code_version
from slim.pipeline.shardset import split_hint
from slim.pipeline.sources import NonFiniteSample

from . import checkpoint as ck
from . import distributed as du
from .batches import BatchSource, count_train_samples, pipeline_source
from .config import PretrainConfig, incompatible_keys, replace_runtime, to_toml, from_toml_text
from .faults import FaultPlan
from .metrics import MetricsLog, memory_mb
from .param_groups import build_param_groups, drop_last_layer_grads, set_step_values
from .progress import StepProgress
from .rng import capture_rng, restore_rng
from .runs import read_run, write_run
from .schedules import Schedules, build_schedules

LOSS_KEYS = ("loss", "mfm", "glcl", "koleo")


class TrainingError(RuntimeError):
    """A run that cannot go on (non-finite loss, bad data, world-size mismatch)."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class _StopFlag:
    """Set by SIGTERM / SIGINT; the loop saves a checkpoint and returns at the next step."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def install(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. called from a worker thread)
                pass

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: the user really wants out now
        self.signal = signal.Signals(signum).name

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def check_train_split(cfg: PretrainConfig, data_dir: Path, benchmark: str, world_size: int) -> int:
    """The number of training samples of `benchmark`; TrainingError (with a hint that can
    help) when the split is missing, empty, or smaller than one global batch (the loader
    draws full batches only)."""
    try:
        n = count_train_samples(data_dir, benchmark)
    except (OSError, ValueError) as exc:
        raise TrainingError(str(exc), "choose a --benchmark of this dataset (`slim-ingest info DATA` "
                            "lists them), or re-ingest it") from None
    if n == 0:
        raise TrainingError(
            f"{data_dir}: the {benchmark} training split is empty (0 samples): none of the ingested "
            f"files belongs to it", "pretrain on another benchmark with training samples "
            f"(`slim-ingest info {data_dir}` shows each split's size), or ingest raw files that include "
            "this benchmark's training performers / cameras / setups")
    gb = cfg.data.global_batch
    if n < gb:
        fit = 1 << (n.bit_length() - 1) if world_size == 1 else max(world_size, n // world_size * world_size)
        raise TrainingError(
            f"{data_dir}: the {benchmark} training split has {n} samples, fewer than one global batch "
            f"of {gb} (data.global_batch)",
            f"lower the batch, e.g. `--set data.global_batch={fit}`, or use a preset made for small "
            "data (`--preset cpu-demo` or `--preset cpu-smoke`)")
    return n


def steps_per_epoch(cfg: PretrainConfig, data_dir: Path, benchmark: str) -> tuple[int, str]:
    """(steps in one epoch, a sentence saying what an epoch is)."""
    gb = cfg.data.global_batch
    if cfg.schedule.epoch_steps > 0:
        return cfg.schedule.epoch_steps, (f"epoch = {cfg.schedule.epoch_steps} steps at global batch {gb} "
                                          "(fixed step count, as the released recipe)")
    n = count_train_samples(data_dir, benchmark)
    steps = n // gb
    if steps < 1:
        raise TrainingError(f"{data_dir}: the {benchmark} training split has {n} samples, fewer than one "
                            f"global batch of {gb}", "lower data.global_batch")
    return steps, f"epoch = one pass over {n} training samples = {steps} steps at global batch {gb}"


def make_schedules(cfg: PretrainConfig, epoch_steps: int) -> Schedules:
    s, o = cfg.schedule, cfg.optim
    return build_schedules(
        peak_lr=o.peak_lr(cfg.data.global_batch), min_lr=o.min_lr, total_steps=s.epochs * epoch_steps,
        epoch_steps=epoch_steps, warmup_epochs=s.warmup_epochs, wd_start=o.weight_decay,
        wd_end=o.weight_decay_end, momentum_start=s.momentum_teacher, momentum_end=s.momentum_teacher_end,
        teacher_temp_start=s.teacher_temp_start, teacher_temp_end=s.teacher_temp,
        teacher_temp_warmup_epochs=s.teacher_temp_warmup_epochs,
        freeze_last_layer_epochs=s.freeze_last_layer_epochs)


#: What `--extend` may change in a run that has a checkpoint: its length.
EXTEND_KEYS = ("schedule.epochs",)


def choose_checkpoint(run_dir: Path, d: du.Dist) -> tuple[int | None, list[str]]:
    """(the step every rank resumes from, None to start at step 0; names of the partial
    files removed). Rank 0 decides and broadcasts: it first deletes the `.tmp` files of a
    save that was cut off (a process or node killed while writing), then takes the newest
    complete `step-*.pt`. The other ranks never list the folder, so they agree with rank 0
    even on a shared file system whose listings lag (NFS attribute caches)."""
    step, removed = None, []
    if d.is_main:
        removed = [p.name for p in ck.remove_partial(run_dir)]
        latest = ck.latest_checkpoint(run_dir)
        step = latest[0] if latest else None
    return du.broadcast_object(step, d), removed


def _agree(d: du.Dist, exc: BaseException | None) -> None:
    """Raise on every rank when any rank failed a start-up check (each rank checks its
    own file system view): a rank that raised alone would leave the others waiting in
    the next collective until the process-group timeout."""
    mine = None if exc is None else (d.rank, socket.gethostname(), type(exc).__name__, str(exc),
                                     getattr(exc, "hint", None))
    every = [e for e in du.gather_objects(mine, d) if e is not None]
    if exc is not None:
        raise exc
    if every:
        rank, host, kind, msg, hint = every[0]
        cls = ck.CheckpointError if kind == "CheckpointError" else TrainingError
        raise cls(f"rank {rank} (host {host}): {msg}", hint)


def _resume_state(cfg: PretrainConfig, run_dir: Path, data_dir: Path, benchmark: str, extend: bool = False,
                  step: int | None = None):
    """(config to use, checkpoint payload or None) for the checkpoint of `step` (from
    `choose_checkpoint`; None: a fresh start). Raises CheckpointError when that file is
    missing on this rank (a run folder that is not shared between nodes), on a checkpoint
    of an incompatible config or another dataset. extend: schedule.epochs may differ
    (the caller checks that it grows)."""
    if step is None:
        return cfg, None
    path = ck.checkpoint_path(run_dir, step)
    if not path.is_file():
        raise ck.CheckpointError(
            f"{path} (the checkpoint rank 0 resumes from) does not exist on this node",
            "on several nodes --out must be one folder that every node mounts at the same path "
            "(NFS, a parallel file system or a bucket mounted with a FUSE driver)")
    payload = ck.load_checkpoint(path)
    saved = from_toml_text(payload["config"])
    bad = incompatible_keys(saved, cfg)
    if extend:
        bad = [b for b in bad if b[0] not in EXTEND_KEYS]
        saved = dataclasses.replace(saved, schedule=dataclasses.replace(saved.schedule,
                                                                        epochs=cfg.schedule.epochs))
    elif any(b[0] in EXTEND_KEYS for b in bad) and len(bad) == 1:
        k, was, now = bad[0]
        raise ck.CheckpointError(f"{run_dir} holds a run of {k}={was} (step {step}); this command asks for {now}",
                                 "to train that run further, add --extend (the lr, weight decay, momentum and "
                                 "teacher temperature schedules are then recomputed for the new length from "
                                 f"step {step} on); or give a new --out folder")
    if bad:
        lines = ", ".join(f"{k}: {a!r} in the run, {b!r} now" for k, a, b in bad[:8])
        raise ck.CheckpointError(f"{run_dir} holds a run (step {step}) with a different config: {lines}",
                                 f"resume with the same options (its config is {run_dir / 'config.toml'}), "
                                 "or give a new --out folder")
    info = payload.get("run", {})
    for key, now in (("benchmark", benchmark), ("data", str(data_dir))):
        if info.get(key) not in (None, now):
            raise ck.CheckpointError(f"{run_dir} was trained with {key} {info[key]!r}, not {now!r}",
                                     "give a new --out folder, or the same --data/--benchmark as before")
    return replace_runtime(saved, cfg), payload


def _clip(model, max_norm: float) -> torch.Tensor:
    """Clip the student encoder and each head separately (released DINOv2 code);
    returns the largest pre-clip norm as a 0-dim float32 tensor on the device (read
    back only when logged)."""
    norms = [torch.nn.utils.clip_grad_norm_(model.student.parameters(), max_norm)]
    norms += [torch.nn.utils.clip_grad_norm_(h.parameters(), max_norm) for h in model.heads.values()]
    return torch.stack([n.detach().float() for n in norms]).max()


def autocast_for(device: torch.device, amp: str, amp_cpu: bool = False):
    """The step's autocast context: bf16 on CUDA when amp == "bf16"; on CPU only when
    amp_cpu is also set (CPU bf16 is slower than float32 on most CPUs: off by default,
    used to test the GPU policy on a CPU); otherwise no autocast."""
    if amp == "bf16" and (device.type == "cuda" or (device.type == "cpu" and amp_cpu)):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors (also inside "locals") on `device`, copied without blocking
    the host (from pinned memory when the loader pins it); other values as they are."""
    if device.type == "cpu":
        return batch

    def move(v):
        if isinstance(v, torch.Tensor):
            return v.to(device, non_blocking=True)
        if isinstance(v, list):
            return [move(x) for x in v]
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        return v
    return move(batch)


def with_data_layout(cfg: PretrainConfig, data_dir: Path) -> tuple[PretrainConfig, str | None]:
    """`cfg` with model.encoder.num_joints set to the dataset's layout (manifest
    `slim.layout`): the model's joint count comes from the data, never from a default.
    Returns (config, layout name); unchanged with None when the folder has no manifest
    (tests that feed batches directly)."""
    from slim.ingest.manifest import dataset_layout

    from .configtools import apply
    if not (Path(data_dir) / "manifest.parquet").is_file():
        return cfg, None
    try:
        layout = dataset_layout(data_dir)
    except KeyError as e:
        raise TrainingError(f"{data_dir}: {e.args[0]}", "re-ingest the dataset with this version of slim-ingest") from None
    return apply(cfg, {"model.encoder.num_joints": layout.num_joints}), layout.name


def pretrain(cfg: PretrainConfig, *, data_dir: Path, benchmark: str, run_dir: Path, preset: str = "custom",
             batch_source: BatchSource | None = None, console=None, stop_after: int | None = None,
             model_hook=None, extend: bool = False) -> dict:
    """Run (or resume) pretraining into `run_dir`; returns the final run.json dict.

    batch_source: (start_step, rank, world_size, per_rank_batch) -> batches; defaults to
    the real pipeline on `data_dir`. stop_after: stop (with a checkpoint, status
    "interrupted") once this many steps are completed, as a signal would. model_hook:
    called with the SLiM module once it is built (tests inspect every rank's weights).
    extend: continue a run (finished or not) with a larger schedule.epochs; the
    schedules are recomputed for the new total from the checkpoint's step on."""
    from rich.console import Console

    from slim.model.slim import SLiM

    console = console or Console(highlight=False)
    data_dir, run_dir = Path(data_dir).resolve(), Path(run_dir)
    try:
        d = du.setup(cfg.run.device)
    except du.ProcessGroupError as exc:
        raise TrainingError(str(exc), exc.hint) from None
    except (RuntimeError, ValueError) as exc:  # e.g. run.device=cuda on a machine without CUDA
        raise TrainingError(str(exc), "use --set run.device=cpu, or auto (a GPU when torch sees one)") from None
    say = console.print if d.is_main else (lambda *a, **k: None)
    threads_before = torch.get_num_threads()
    started = fresh = False
    try:
        if cfg.run.threads > 0:
            torch.set_num_threads(cfg.run.threads)
        if cfg.data.global_batch % d.world_size:
            raise TrainingError(f"data.global_batch={cfg.data.global_batch} does not divide by the "
                                f"{d.world_size} processes", "choose a global batch that is a multiple of nproc")
        per_rank = cfg.data.global_batch // d.world_size
        try:
            faults = FaultPlan(d.rank)   # SLIM_FAULT_KILL: the elastic tests' lost worker
        except ValueError as exc:
            raise TrainingError(str(exc), "unset SLIM_FAULT_KILL (a test hook that kills a worker on purpose)") from None
        if d.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
        du.barrier(d)
        fresh = not (run_dir / "run.json").is_file()
        cfg, layout_name = with_data_layout(cfg, data_dir)
        chosen, removed = choose_checkpoint(run_dir, d)
        for name in removed:
            say(f"[yellow]removed[/] {name}: a checkpoint whose save was cut off (never resumed from)")
        try:
            if not run_dir.is_dir():
                raise TrainingError(f"the run folder {run_dir} (made by rank 0) does not exist on this node",
                                    "on several nodes --out must be one folder that every node mounts at "
                                    "the same path (NFS, a parallel file system or a FUSE-mounted bucket)")
            cfg, payload = _resume_state(cfg, run_dir, data_dir, benchmark, extend, chosen)
            problem = None
        except (ck.CheckpointError, TrainingError) as exc:
            problem = exc
        _agree(d, problem)
        if batch_source is None:   # a given batch source does not read data_dir's splits
            check_train_split(cfg, data_dir, benchmark, d.world_size)
        epoch_steps, epoch_note = steps_per_epoch(cfg, data_dir, benchmark)
        sched = make_schedules(cfg, epoch_steps)
        total = sched.total_steps
        start = int(payload["step"]) if payload else 0
        extended = None
        if payload and extend:
            was = int(payload["total_steps"])
            if total <= was:
                raise TrainingError(f"--extend: {run_dir} was planned for {was} steps and this config gives "
                                    f"{total}; extending needs more",
                                    f"raise schedule.epochs (now {cfg.schedule.epochs}), e.g. --set "
                                    f"schedule.epochs={cfg.schedule.epochs * 2}")
            extended = {"at_step": start, "from_total_steps": was, "to_total_steps": total}
            say(f"[bold yellow]extending[/] {run_dir} from step {start} (planned {was}) to {total} steps: "
                f"the lr, weight decay, momentum and teacher temperature schedules are recomputed for "
                f"{total} steps and followed from step {start} on (not a restart of the warm-up)")
            payload["total_steps"] = total
        if payload and int(payload["total_steps"]) != total:
            raise ck.CheckpointError(f"{run_dir}: the checkpoint was written for {payload['total_steps']} steps, "
                                     f"this config gives {total}", "use the same schedule and dataset, or a new --out")
        peak = cfg.optim.peak_lr(cfg.data.global_batch)
        toml = to_toml(cfg)
        say(f"[bold]slim-train pretrain[/] preset {preset}, {d.world_size} process(es) on {d.device.type}")
        say(toml.rstrip(), markup=False)
        say(f"effective lr {peak:.3g} = {cfg.optim.base_lr:g} x {cfg.optim.lr_scaling}"
            f"({cfg.data.global_batch}/{cfg.optim.lr_ref_batch}) for global batch {cfg.data.global_batch} "
            f"({per_rank} per process)")
        say(f"{total} steps = {cfg.schedule.epochs} epochs; {epoch_note}")
        run_info = {"data": str(data_dir), "dataset": data_dir.name, "benchmark": benchmark,
                    "layout": layout_name}
        attempt = du.restart_count()
        if d.is_main:
            header = (f"resolved config of {run_dir.name} (preset {preset}); effective lr {peak:.6g}; "
                      f"{total} steps; {epoch_note}")
            (run_dir / "config.toml").write_text(to_toml(cfg, header))
            if extended:
                history = read_run(run_dir).get("extended", []) if (run_dir / "run.json").is_file() else []
                write_run(run_dir, extended=history + [extended])
            before = read_run(run_dir) if (run_dir / "run.json").is_file() else {}
            resumes = before.get("resumes", [])
            if payload:  # the story of a run that was stopped, failed or lost a node
                resumes = resumes + [{"step": start, "restart": attempt, "world_size": d.world_size,
                                      "previous_status": before.get("status"),
                                      "previous_error": before.get("error")}]
            write_run(run_dir, **run_info, status="running", stopped_by=None, step=start, total_steps=total,
                      code_version=code_version(), world_size=d.world_size, preset=preset, error=None,
                      restarts=attempt, resumes=resumes)
        started = True
        if payload and start >= total:
            say(f"{run_dir} already finished ({total} steps): nothing to train")
            return _finish(d, run_dir, say)

        model = SLiM(cfg.model, torch.Generator().manual_seed(cfg.run.seed)).to(d.device)
        if model_hook is not None:
            model_hook(model)
        groups = build_param_groups(model.param_groups_spec())
        optimizer = torch.optim.AdamW(groups, lr=0.0, weight_decay=0.0,
                                      betas=(cfg.optim.beta1, cfg.optim.beta2))
        if payload:
            path = ck.checkpoint_path(run_dir, start)
            ck.load_model_state(model, payload["model"], path)
            try:
                optimizer.load_state_dict(payload["optimizer"])
            except (ValueError, KeyError) as exc:
                raise ck.CheckpointError(f"{path}: optimizer state does not fit the model ({exc})",
                                         "start a new run folder") from None
            if payload["world_size"] == d.world_size:
                restore_rng(payload["rng"][d.rank])
            else:
                say(f"[yellow]note:[/] checkpoint written by {payload['world_size']} process(es), resuming on "
                    f"{d.world_size}: the batch order from here differs from an uninterrupted run")
            say(f"[bold green]resuming[/] from {path.name} at step {start} of {total}"
                + (f" (elastic restart {attempt})" if attempt else ""))
            del payload
        net = model
        if d.active:
            net = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
        if cfg.run.compile:
            net = torch.compile(net)
        autocast = autocast_for(d.device, cfg.run.amp, cfg.run.amp_cpu)
        # One backward per student pass (each global view, then each local scale): the
        # same gradient with one pass's activations alive at a time instead of the whole
        # step's (cpu-demo: ~155 of ~530 MB; SLiM.forward_backward, docs/internals.md).
        # Eager single-process only: DDP wants one backward per forward, and a compiled
        # step is one graph.
        split_backward = not d.active and not cfg.run.compile

        from slim.pipeline.loader import ShardFaults
        use_shards = batch_source is None and cfg.data.source == "shards"
        if use_shards:
            _describe_shards(cfg, data_dir, benchmark, say)
        source = batch_source or pipeline_source(data_dir, benchmark, cfg.pipeline, seed=cfg.run.seed,
                                                 num_workers=cfg.data.num_workers, source=cfg.data.source,
                                                 pin_memory=d.device.type == "cuda",
                                                 prefetch=cfg.data.prefetch, shards=cfg.data.shards,
                                                 faults=ShardFaults(cfg.data.shard_retries,
                                                                    cfg.data.shard_retry_wait,
                                                                    cfg.data.max_failed_shards))
        batches = source(start, d.rank, d.world_size, per_rank)
        log = MetricsLog(run_dir, tensorboard=cfg.run.tensorboard, enabled=d.is_main)
        log.drop_after(start)
        if log.tensorboard_note:
            say(f"[dim]{log.tensorboard_note}[/]")
        stop = _StopFlag()
        stop.install()
        bar = StepProgress(console, total, start, enabled=d.is_main)

        def save(step_done: int) -> Path:
            rng = du.gather_objects(capture_rng(), d)
            path = None
            if d.is_main:
                path = ck.save_checkpoint(run_dir, step=step_done, total_steps=total, model=model,
                                          optimizer=optimizer, rng=rng, config_toml=toml,
                                          world_size=d.world_size, run_info=run_info,
                                          keep_last=cfg.checkpoint.keep_last,
                                          fault=faults.save_hook(step_done))
                write_run(run_dir, step=step_done)
            du.barrier(d)
            return path

        window = _new_window()
        shard_total = 0
        step = start
        status = "finished"
        try:
            while step < total:
                t_wait = time.perf_counter()
                try:
                    batch = next(batches)
                except NonFiniteSample as exc:
                    raise TrainingError(worker_message(exc), "the data is the cause: re-ingest the dataset with the "
                                        "current `slim-ingest` and train again") from None
                except (ValueError, FileNotFoundError) as exc:   # the pipeline's word on the data
                    message, hint = split_hint(worker_message(exc))
                    raise TrainingError(message, hint or getattr(exc, "hint", None) or
                                        "check --data / --benchmark / data.source and data.num_workers") from None
                window["wait"] += time.perf_counter() - t_wait
                for ev in batch.pop("shard_events", None) or ():
                    window["shard_" + ev["kind"] + "s"] += 1
                    if ev["kind"] == "skip":
                        window["skipped"].append(ev["shard"])
                    console.print(f"[yellow]shard {ev['kind']}[/] (rank {d.rank}, step {step}): {ev['shard']}: "
                                  f"{ev['error']}" + (" -> skipped for the rest of this epoch"
                                                      if ev["kind"] == "skip" else " -> retrying"),
                                  markup=True, highlight=False)
                v = sched.at(step)
                set_step_values(optimizer, v["lr"], v["wd"])
                # A 0-dim device tensor: no recompilation when the temperature changes.
                temp = torch.full((), v["teacher_temp"], dtype=torch.float32, device=d.device)
                dev_batch = to_device(batch, d.device)
                optimizer.zero_grad(set_to_none=True)
                if split_backward:
                    out = model.forward_backward(dev_batch, temp, autocast)
                else:
                    with autocast:
                        out = net(dev_batch, temp)
                    out["loss"].backward()
                if v["last_layer_frozen"]:
                    drop_last_layer_grads(optimizer)
                grad_norm = _clip(model, cfg.optim.clip_grad) if cfg.optim.clip_grad > 0 else None
                optimizer.step()
                model.update_teacher(v["momentum"])
                step += 1
                faults.after_step(step)
                window["steps"] += 1
                window["losses"].append(torch.stack([out[k].detach().float() for k in LOSS_KEYS]))
                window["ids"].append(batch.get("ids", []))
                window["bad_inputs"].append(non_finite_inputs(dev_batch))
                stopping = stop_after is not None and step >= stop_after
                logging = step % cfg.run.log_every == 0 or step == total
                saving = step % cfg.checkpoint.every_steps == 0 or step == total
                stats = None
                # A signal is seen at once by one process; ranks agree on it at sync points.
                if logging or saving or stopping or (stop.signal and not d.active):
                    # The sync point: one readback for the window. Every rank learns whether
                    # any rank saw a non-finite loss or a stop signal, so all take the same branch.
                    losses = torch.stack(window["losses"])                    # [steps, 4]
                    finite = torch.isfinite(losses).all(1).float()
                    flags = torch.stack([1.0 - finite.min(), torch.tensor(1.0 if stop.signal else 0.0,
                                                                         device=finite.device)])
                    du.all_reduce_(flags, d, "max")
                    flags = flags.tolist()
                    if flags[0] > 0:
                        _non_finite(d, step - len(window["ids"]), losses, finite, window["ids"],
                                    window["bad_inputs"])
                    if logging:
                        stats = _stats(d, out, v, grad_norm, window, cfg.data.global_batch)
                        if use_shards:
                            shard_total = _shard_stats(d, window, stats, shard_total)
                        log.log({"step": step, **stats})
                    asked = flags[1] > 0 or stopping
                    window = _new_window() if logging else {**window, "losses": [], "ids": [], "bad_inputs": []}
                else:
                    asked = False
                bar.update(step, stats)
                if saving or asked:
                    path = save(step)
                    if path is not None and not bar.live:
                        say(f"checkpoint {path}")
                if asked and step < total:
                    status = "interrupted"
                    why = stop.signal or f"stop_after={stop_after}"
                    say(f"[yellow]stopped by {why}[/] at step {step} of {total}; checkpoint saved. "
                        "Run the same command to resume.")
                    break
        finally:
            bar.close()
            log.close()
            stop.restore()
        if status == "interrupted":
            if d.is_main:
                write_run(run_dir, status="interrupted", step=step, stopped_by=why)
            return {**read_run(run_dir), "stopped_by": why}
        return _finish(d, run_dir, say)
    except Exception as exc:
        # A run that fails (to start or later) says so, with the reason; a folder holding
        # another run that this command could not resume is left as it was.
        if d.is_main and (started or fresh) and run_dir.is_dir():
            write_run(run_dir, status="failed", error=worker_message(exc))
        raise
    except KeyboardInterrupt as exc:  # a signal before the loop's own handler, or a second Ctrl-C
        if d.is_main and (run_dir / "run.json").is_file():
            name = "SIGTERM" if type(exc).__name__ == "Terminated" else "SIGINT"
            write_run(run_dir, status="interrupted", stopped_by=name)
        raise
    finally:
        torch.set_num_threads(threads_before)
        du.teardown(d)


def _finish(d: du.Dist, run_dir: Path, say) -> dict:
    if d.is_main:
        enc = ck.export_encoder(run_dir)
        write_run(run_dir, status="finished")
        say(f"[bold green]finished[/]: teacher encoder written to {enc}")
    du.barrier(d)
    return read_run(run_dir)


def _new_window() -> dict:
    """What the loop keeps between sync points: timing, and each step's losses (device
    tensors [4], LOSS_KEYS order), batch ids and non-finite-input flags (bool [B])."""
    return {"t0": time.perf_counter(), "wait": 0.0, "steps": 0, "losses": [], "ids": [], "bad_inputs": [],
            "shard_retrys": 0, "shard_skips": 0, "skipped": []}


def _shard_stats(d: du.Dist, window: dict, stats: dict, total: int) -> int:
    """Add the window's shard fetch faults, summed over ranks, to a metrics record:
    shard_retries, shards_skipped (this window), shards_skipped_total (since this
    process started) and skipped_shards (their names, when any). Returns the new total."""
    counts = torch.tensor([float(window["shard_retrys"]), float(window["shard_skips"])])
    du.all_reduce_(counts, d, "sum")
    names = [n for part in du.gather_objects(window["skipped"], d) for n in part]
    retries, skips = (int(c) for c in counts.tolist())
    total += skips
    stats.update(shard_retries=retries, shards_skipped=skips, shards_skipped_total=total)
    if names:
        stats["skipped_shards"] = names
    return total


def _describe_shards(cfg: PretrainConfig, data_dir: Path, benchmark: str, say) -> None:
    """Resolve data.shards once up front: say where the shards come from (and, for an
    unindexed local folder, that they are read unchecked); TrainingError on a bad spec."""
    from slim.pipeline.shardset import ShardError, resolve
    try:
        ss = resolve(cfg.data.shards, data_dir / "shards" / f"{benchmark}_train")
    except ShardError as exc:
        raise TrainingError(exc.message, exc.hint) from None
    count = f"{ss.num_samples} samples, " if ss.num_samples is not None else ""
    say(f"shards: {ss.where} ({len(ss.urls)} shards, {count}encoding {ss.encoding}; failing fetches retried "
        f"{cfg.data.shard_retries}x, then skipped; more than {cfg.data.max_failed_shards:g} of a reader's "
        "shards skipped stops the run)")
    if ss.note:
        say(f"[yellow]note:[/] {ss.note}")


def _stats(d: du.Dist, out: dict, v: dict, grad_norm: torch.Tensor | None, window: dict,
           global_batch: int) -> dict:
    """Losses of the last step averaged over ranks, its schedule values and gradient norm
    (this rank's: nan when clipping is off), throughput and memory of the window."""
    losses = torch.stack([out[k].detach().float() for k in LOSS_KEYS])
    du.all_reduce_(losses, d, "sum")
    losses = (losses / d.world_size).tolist()
    grad_norm = float(grad_norm) if grad_norm is not None else float("nan")
    elapsed = max(time.perf_counter() - window["t0"], 1e-9)
    return {**dict(zip(LOSS_KEYS, losses)), "lr": v["lr"], "wd": v["wd"], "momentum": v["momentum"],
            "teacher_temp": v["teacher_temp"], "last_layer_frozen": v["last_layer_frozen"],
            "grad_norm": grad_norm, "samples_per_s": window["steps"] * global_batch / elapsed,
            "data_wait": window["wait"] / elapsed, "memory_mb": memory_mb(d.device)}


def _non_finite(d: du.Dist, first_step: int, losses: torch.Tensor, finite: torch.Tensor, ids: list,
                bad_inputs: list | None = None):
    """Every rank raises together (so none hangs in a collective), naming the samples of
    the first step with a non-finite loss. first_step: the step index of row 0 of
    losses [steps, 4] (LOSS_KEYS order); finite: [steps] 1.0 where all four are finite;
    ids: each step's batch ids; bad_inputs: each step's bool [B] (device) of samples whose
    views hold NaN / inf (`non_finite_inputs`). When some inputs were non-finite the
    message names them and says so (the learning rate is not the cause then); otherwise
    it names the batch and suggests a lower lr."""
    finite = finite.cpu()
    bad_rows = torch.nonzero(finite == 0).flatten().tolist()
    row = bad_rows[0] if bad_rows else len(ids) - 1
    step = first_step + row
    mine = dict(zip(LOSS_KEYS, losses[row].cpu().tolist()))
    inputs = []
    if bad_rows and bad_inputs:
        row_ids = list(ids[row])
        inputs = [row_ids[i] if i < len(row_ids) else f"#{i}"
                  for i in torch.nonzero(bad_inputs[row].cpu()).flatten().tolist()]
    ids = list(ids[row]) if bad_rows else []
    if d.active:  # the ranks may differ in their first bad step: report the earliest
        step = min(du.gather_objects(step if bad_rows else 2**62, d))
    every = du.gather_objects({"rank": d.rank, "losses": mine, "ids": ids, "inputs": inputs}, d)
    bad_in = [i for e in every for i in e["inputs"]]
    if bad_in:
        raise TrainingError(
            f"non-finite loss at step {step} (the inputs of samples {bad_in[:16]}"
            f"{' ...' if len(bad_in) > 16 else ''} hold NaN or inf coordinates); the run "
            "stopped, the last checkpoint is intact",
            "the data is the cause, not the learning rate: re-ingest the dataset with the current "
            "`slim-ingest` (it drops such frames), check it with `slim-ingest verify`, and train "
            "again; `slim-ingest show DATA ID` shows a sample")
    bad = [e for e in every if e["ids"]]
    detail = "; ".join(f"rank {e['rank']}: losses {e['losses']}, batch ids {e['ids'][:16]}"
                       + (" ..." if len(e["ids"]) > 16 else "") for e in bad)
    raise TrainingError(f"non-finite loss at step {step} ({detail}); the inputs were finite; the run "
                        "stopped, the last checkpoint is intact",
                        "lower optim.base_lr and resume with the same command; `slim-ingest show "
                        "DATA ID` shows a sample")


def worker_message(exc: BaseException) -> str:
    """The original message of an exception re-raised from a DataLoader worker (torch
    prefixes it with "Caught X in DataLoader worker" and the worker's traceback)."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [ln for ln in text.splitlines() if ln.strip()][-1]
    name = type(exc).__name__ + ": "
    return last.split(name, 1)[1] if name in last else last


def non_finite_inputs(batch: dict) -> torch.Tensor:
    """bool [B] on the batch's device: samples whose views (global [B, ...] or any local
    crop x [B, ...]) hold a NaN or inf. Device ops only (no host sync): read back at the
    next sync point, and only when the loss was non-finite."""
    views = [batch["global"]] + [loc["x"] for loc in batch.get("locals", [])]
    bad = torch.zeros(views[0].shape[0], dtype=torch.bool, device=views[0].device)
    for v in views:
        bad = bad | ~torch.isfinite(v.detach().reshape(v.shape[0], -1)).all(dim=1)
    return bad
