"""The training loop, assembled from Megatron-Core pieces.

One step = ``get_forward_backward_func()`` over the global batch's micro-batches (1F1B when PP > 1,
interleaved 1F1B over ``parallel.virtual_pipeline_model_parallel_size`` model chunks per rank),
``finalize_model_grads`` (DP all-reduce, tied-embedding sync across pipeline stages), the Megatron
optimizer step (grad-norm clipping inside) and the LR scheduler. ``self.model`` is the list of this
rank's model chunks (one without interleaving), each wrapped in Megatron DDP, as in Megatron-LM. With
context parallelism each micro-batch is split along the sequence (Megatron-Core's load-balanced
zigzag, :meth:`Trainer.get_batch`) before the forward. Signals (SIGUSR1/SIGTERM) are
honoured at step boundaries: every rank agrees, a checkpoint is written, and ``run`` returns False.
Before any process group starts, the data are checked (``data_check.py``), rank 0 locks the run
directory (``run_lock.py``; a refused trainer changes nothing there) and the start itself is checked
(``run_start.py``: this run's checkpoints all damaged; ``resume_check.py``: a resume whose recipe differs
from the checkpoint's, a fresh start over an earlier run). A start that fails removes the directories
it created while they are still empty; a re-run of a finished run says so and leaves ``summary.json``. Stages built on it override the data seam (``check_data`` / ``build_datasets`` / ``build_data``)
and ``forward_step``, never the loop: ``Distiller`` (distiller.py) swaps only ``forward_step``;
``DPOTrainer`` (dpo.py) also sets ``sequences_per_sample`` (a pair = 2 rows), ``loss_key`` and adds
its figures through ``step_metrics`` / ``eval_record``.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from functools import cached_property, partial
from pathlib import Path

import torch

from megatron_ext import checkpoint as ckpt
from megatron_ext import parallel
from megatron_ext.data import MicroBatches, build_datasets, check_data, split_for_context_parallel
from megatron_ext import tokenizer_check, wandb_log
from megatron_ext.metrics import MetricsLogger, Throughput
from megatron_ext.model import build_model_chunks, require_te_features, transformer_config
from megatron_ext.resume_check import (check_fresh_start, check_initial_weights, check_resume, data_record,
                                       describe, schedule_params)
from megatron_ext.run_files import SUMMARY_FILE, last_logged
from megatron_ext.run_lock import RunLockedError
from megatron_ext.run_start import created_by_mkdir, remove_if_empty, resume_hint
from recipes import Recipe, flops_per_token, validate


def lm_loss(loss_mask: torch.Tensor, output_tensor: torch.Tensor):
    """Token-mean LM loss for one micro-batch; reports (sum, count) so logging can average exactly."""
    losses = output_tensor.float().view(-1)
    mask = loss_mask.float().view(-1)
    loss_sum = torch.sum(losses * mask)
    num_tokens = mask.sum().to(torch.int)
    return loss_sum, num_tokens, {"lm loss": torch.stack([loss_sum.detach(), mask.sum()])}


class Trainer:
    # Sequences each dataset sample contributes to a micro-batch (DPO: a pair = chosen + rejected).
    sequences_per_sample: int = 1
    # The checkpoint whose weights this run continues (resumed or ``checkpoint.load``); None from scratch.
    weights_from: "str | Path | None" = None
    # The logged {sum, count} pair that is the training objective (``loss``/``val_loss``).
    loss_key: str = "lm loss"

    def __init__(self, recipe: Recipe, resume: str = "auto"):
        self.recipe = recipe
        env = parallel.detect_env()
        validate(recipe, world_size=env.world_size, has_gpu=torch.cuda.is_available())
        require_te_features(recipe)
        wandb_log.check_available(recipe)
        self.check_data()  # fail on the login node / before process groups, not after
        self.run_dir = Path(recipe.logging.dir) / recipe.logging.run_name
        self.ckpt_dir = Path(recipe.checkpoint.dir or self.run_dir / "checkpoints")
        created = [d for d in (created_by_mkdir(self.run_dir), created_by_mkdir(self.ckpt_dir)) if d is not None]
        # Locked before anything in the run directory is read for a decision or changed (check_fresh_start
        # may rename metrics.jsonl): a second trainer is refused having touched nothing.
        self.locks, refused = ckpt.lock_run(self.run_dir, self.ckpt_dir, is_rank0=env.rank == 0)
        try:
            if refused and env.world_size == 1:
                raise RunLockedError(refused)
            self._start(resume, env.rank == 0, refused)
        except BaseException:
            self._abandon_start(created if env.rank == 0 and not refused else [])
            raise

    def _start(self, resume: str, is_rank0: bool, refused: str | None) -> None:
        """Everything after the run lock: checks, process groups, model, optimizer, resume, data, metrics.

        ``refused``: rank 0's lock refusal (skip the checks, fail with every rank once the group is up).
        """
        recipe = self.recipe
        changes, resume_hint = [], None
        if not refused:
            resume_hint = self._resume_path(resume)
            changes = self._check_start(resume, resume_hint, is_rank0=is_rank0)
        p = recipe.parallel
        self.dist = parallel.initialize(p.tensor_model_parallel_size, p.pipeline_model_parallel_size,
                                        seed=recipe.train.seed, context_parallel_size=p.context_parallel_size,
                                        virtual_pipeline_model_parallel_size=p.virtual_pipeline_model_parallel_size)
        from megatron.core import parallel_state as ps

        self.ps = ps
        ckpt.agree_on_run_lock(refused)  # one trainer per run directory: every rank fails together
        self.config = transformer_config(recipe=recipe, **self.transformer_overrides())
        if p.tp_comm_overlap:
            self._initialize_tp_comm_overlap()
        chunks = build_model_chunks(recipe, self.config)
        self.model = [self._wrap(chunk, first=i == 0) for i, chunk in enumerate(chunks)]
        self.optimizer, self.scheduler = self._optimizer()
        self._wire_schedule_hooks()

        self.step, self.consumed_samples = 0, 0
        resume_from, state = ckpt.resume(self.ckpt_dir, resume, self.model, self.optimizer, self.scheduler,
                                         verify=recipe.checkpoint.verify, say=self._print)
        if resume == "auto" and resume_from is not None and (resume_hint is None
                                                              or resume_from.resolve() != resume_hint.resolve()):
            changes = check_resume(recipe, resume_from)  # fell back past a damaged checkpoint: compare with this one
        if resume_from is not None:
            self.weights_from = resume_from
            self.step, self.consumed_samples = state["step"], state["consumed_samples"]
            o = recipe.optimizer  # the checkpoint's param groups bring back its Adam settings: the recipe's win
            for group in self.optimizer.param_groups:
                group["betas"], group["eps"] = (o.adam_beta1, o.adam_beta2), o.adam_eps
            self._print(f"resumed from {resume_from} at step {self.step}")
            if changes:
                self._print("this recipe differs from the checkpoint's:\n" + "\n".join(describe(changes, self.step)))
        elif recipe.checkpoint.load:
            self.weights_from = recipe.checkpoint.load
            ckpt.load_model_only(recipe.checkpoint.load, self.model, verify=recipe.checkpoint.verify)
            self._print(f"initial weights from {recipe.checkpoint.load} (fresh optimizer)")

        t = recipe.train
        self.train_batches, self.valid_batches = self.build_data()
        self.metrics = MetricsLogger(self.run_dir, enabled=parallel.is_rank0(), resume_step=self.step,
                                     tensorboard=recipe.logging.tensorboard,
                                     wandb=wandb_log.WandbLogger(recipe, self.run_dir, enabled=parallel.is_rank0()))
        self.throughput = Throughput(t.global_batch_size * recipe.data.seq_length * self.sequences_per_sample,
                                     flops_per_token(recipe.model, recipe.data.seq_length),
                                     torch.distributed.get_world_size())
        self._stop_requested = False

    # ---------------------------------------------------------------- data seam
    # Pretraining reads GPTDataset blends; distillation reuses them; SFT and preference tuning
    # override these methods to plug in their own datasets. The loop never builds data itself.
    def check_data(self) -> None:
        """Validate the recipe's data before any process group starts (raises ``DataError``)."""
        check_data(self.recipe)

    def build_datasets(self, train_samples: int, valid_samples: int):
        """(train, valid) map-style datasets of at least these many samples (valid may be None).

        Each sample is a dict of ``[seq_length]`` tensors: ``tokens``, ``labels``, ``loss_mask``,
        ``position_ids`` (what :meth:`forward_step` reads).
        """
        train, valid, _ = build_datasets(self.recipe, train_samples, valid_samples)
        return train, valid

    @cached_property
    def data_record(self):
        """What data this run reads, kept in ``trainer_state.json`` and compared on resume
        (``resume_check.data_record``: the resolved blend, or the SFT / DPO dataset's fingerprint).
        Computed once per run, not at every save: the data do not change while it trains."""
        return data_record(self.recipe)

    @cached_property
    def tokenizer_record(self):
        """The tokenizer this run's weights belong to, kept in ``trainer_state.json``
        (``tokenizer_check``): the data's, else the recorded one of the checkpoint the run resumed or
        started from; None when nothing records one."""
        found = tokenizer_check.of_data(self.recipe)
        if found is None and self.weights_from is not None:
            found = tokenizer_check.of_checkpoint(self.weights_from)
        return found

    def build_data(self):
        """(train, valid) :class:`MicroBatches` for this data-parallel rank (valid None when empty)."""
        t = self.recipe.train
        evals = t.steps // max(t.eval_interval, 1) + 1
        train_ds, valid_ds = self.build_datasets(t.steps * t.global_batch_size,
                                                 evals * t.eval_steps * t.global_batch_size)
        dp_rank, dp = self.ps.get_data_parallel_rank(), self.ps.get_data_parallel_world_size()
        self.valid_ds = valid_ds
        train = MicroBatches(train_ds, self.recipe, dp_rank, dp)
        valid = MicroBatches(valid_ds, self.recipe, dp_rank, dp) if valid_ds is not None and len(valid_ds) else None
        return train, valid

    # ---------------------------------------------------------------- setup
    def _initialize_tp_comm_overlap(self) -> None:
        """Transformer Engine's userbuffers for TP comm/GEMM overlap, sized for one micro-batch of this rank's
        sequence shard (Megatron-LM's ``_initialize_tp_communicators``); GPU + TE only (validated before)."""
        from transformer_engine.pytorch import module as te_module

        r = self.recipe
        shape = [r.data.seq_length * r.train.micro_batch_size // r.parallel.context_parallel_size,
                 r.model.hidden_size]
        te_module.base.initialize_ub(shape=shape, tp_size=r.parallel.tensor_model_parallel_size,
                                     use_fp8=r.precision.fp8 is not None, ub_cfgs={})

    def transformer_overrides(self) -> dict:
        """``TransformerConfig`` fields a stage sets on top of the recipe's (SFT: per-token loss)."""
        return {}

    def _wrap(self, model, first: bool = True):
        from megatron.core.distributed import DistributedDataParallel, DistributedDataParallelConfig
        from megatron.core.transformer.module import Float16Module

        if torch.cuda.is_available():
            model.cuda(torch.cuda.current_device())
        if self.config.bf16 or self.config.fp16:
            model = Float16Module(self.config, model)
        p = self.recipe.parallel
        ddp_config = DistributedDataParallelConfig(
            grad_reduce_in_fp32=True, overlap_grad_reduce=p.overlap_grad_reduce,
            overlap_param_gather=p.overlap_param_gather, use_distributed_optimizer=p.use_distributed_optimizer,
            check_for_nan_in_grad=True, bucket_size=None if torch.cuda.is_available() else 10**9)
        # Megatron-LM buckets only the first model chunk's gradients with interleaving (its overlap hooks
        # are timed to the first chunk); the others reduce as one bucket each.
        return DistributedDataParallel(config=self.config, ddp_config=ddp_config, module=model,
                                       disable_bucketing=not first)

    def _optimizer(self):
        from megatron.core.optimizer import OptimizerConfig, get_megatron_optimizer
        from megatron.core.optimizer_param_scheduler import OptimizerParamScheduler

        o, r = self.recipe.optimizer, self.recipe
        config = OptimizerConfig(
            optimizer="adam", lr=o.lr, min_lr=o.min_lr, weight_decay=o.weight_decay, adam_beta1=o.adam_beta1,
            adam_beta2=o.adam_beta2, adam_eps=o.adam_eps, clip_grad=o.clip_grad, bf16=self.config.bf16,
            fp16=self.config.fp16, params_dtype=self.config.params_dtype,
            use_distributed_optimizer=r.parallel.use_distributed_optimizer)
        optimizer = get_megatron_optimizer(config, self.model)
        override = r.checkpoint.override_scheduler  # on resume: this recipe's schedule at the resumed step
        scheduler = OptimizerParamScheduler(optimizer, **schedule_params(r), override_opt_param_scheduler=override,
                                            use_checkpoint_opt_param_scheduler=not override)
        return optimizer, scheduler

    def _wire_schedule_hooks(self):
        from megatron.core.distributed import finalize_model_grads

        def per_chunk(name: str):
            funcs = [getattr(chunk, name) for chunk in self.model]
            return funcs[0] if len(funcs) == 1 else funcs

        self.config.no_sync_func = per_chunk("no_sync")
        self.config.finalize_model_grads_func = finalize_model_grads
        self.config.grad_scale_func = self.optimizer.scale_loss
        if self.recipe.parallel.overlap_grad_reduce:
            self.config.grad_sync_func = per_chunk("start_grad_sync")
        if self.recipe.parallel.overlap_param_gather and self.recipe.parallel.use_distributed_optimizer:
            self.config.param_sync_func = per_chunk("start_param_sync")

    def _abandon_start(self, created: list[Path]) -> None:
        """A start failed before training: release the run lock and remove the directories this start
        created (``created``: the topmost of each) as far as they hold no file; nothing else is touched."""
        for lock in self.locks:
            lock.release()
        self.locks = []
        for top in created:
            remove_if_empty(top)

    def _check_start(self, resume: str, resume_from, is_rank0: bool) -> list:
        """Recipe ↔ checkpoint differences to apply (raises ``ResumeError``); see resume_check.py."""
        note = check_fresh_start(self.run_dir, self.ckpt_dir, resume, resume_from, is_rank0)
        if note and is_rank0:
            print(f"[midm train] {note}", flush=True)
        if resume_from is not None:
            return check_resume(self.recipe, resume_from)
        if self.recipe.checkpoint.load:  # named now, not after process groups and model are built
            ckpt.check(self.recipe.checkpoint.load, verify=False)
            check_initial_weights(self.recipe, self.recipe.checkpoint.load)
            tokenizer_check.check_data_against_checkpoint(self.recipe, self.recipe.checkpoint.load, role="initial")
        return []

    def _resume_path(self, resume: str) -> Path | None:
        """The checkpoint ``--resume`` will continue from, found before any process group starts
        (``run_start.resume_hint``: raises DamagedCheckpointError when this run's checkpoints are all
        damaged). Checksums are verified at the load itself, which may fall back further (then the
        recipe is compared again with the checkpoint actually loaded)."""
        return resume_hint(self.ckpt_dir, resume, ckpt.LATEST, resolve=ckpt.resolve,
                           check=partial(ckpt.check, need_trainer_state=True, verify=False))

    # ---------------------------------------------------------------- step
    def get_batch(self, data_iterator) -> dict[str, torch.Tensor]:
        """The next micro-batch on this rank's device, ``[b, s / CP]`` per tensor: with context parallelism
        Megatron-Core's ``get_batch_on_this_cp_rank`` keeps chunks ``r`` and ``2·CP − 1 − r`` of ``2·CP``."""
        batch = next(data_iterator)
        dev = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
        batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        return split_for_context_parallel(batch)

    def is_last_chunk(self, model) -> bool:
        """Whether ``model`` (a chunk passed to :meth:`forward_step`) computes the loss: the last pipeline
        stage's last (or only) model chunk."""
        vpp = self.recipe.parallel.virtual_pipeline_model_parallel_size
        if vpp is None:
            return self.ps.is_pipeline_last_stage()
        return self.ps.is_pipeline_last_stage(ignore_virtual=False, vp_stage=ckpt.unwrap(model).vp_stage)

    def forward_step(self, data_iterator, model):
        batch = self.get_batch(data_iterator)
        output = model(batch["tokens"], batch["position_ids"], attention_mask=None, labels=batch["labels"])
        return output, partial(lm_loss, batch["loss_mask"])

    def data_stream(self, batches, consumed_samples: int):
        """What the schedule reads micro-batches from: one stream, or one per model chunk with interleaving
        (every chunk draws the same micro-batch sequence)."""
        vpp = self.recipe.parallel.virtual_pipeline_model_parallel_size
        if vpp is None:
            return batches.stream(consumed_samples)
        return [batches.stream(consumed_samples) for _ in range(vpp)]

    def _run_batches(self, stream, num_microbatches: int, forward_only: bool):
        from megatron.core.pipeline_parallel import get_forward_backward_func

        return get_forward_backward_func()(
            forward_step_func=self.forward_step, data_iterator=stream, model=self.model,
            num_microbatches=num_microbatches, seq_length=self.recipe.data.seq_length,
            micro_batch_size=self.recipe.train.micro_batch_size * self.sequences_per_sample,
            forward_only=forward_only)

    def _reduce_loss(self, losses: list[dict], key: str = "lm loss") -> float:
        """Token-weighted mean over micro-batches and DP ranks, made visible on every rank."""
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        total = torch.zeros(2, dtype=torch.float64, device=dev)
        if self.ps.is_pipeline_last_stage() and self.ps.get_tensor_model_parallel_rank() == 0:
            for item in losses:
                total += item[key].to(total)
        torch.distributed.all_reduce(total)
        return (total[0] / total[1].clamp(min=1)).item()

    def train_step(self, stream) -> dict:
        for chunk in self.model:
            chunk.train()
            chunk.zero_grad_buffer()
        self.optimizer.zero_grad()
        losses = self._run_batches(stream, self.train_batches.num_microbatches, forward_only=False)
        ok, grad_norm, _ = self.optimizer.step()
        if ok:
            self.scheduler.step(1)
        return {"loss": self._reduce_loss(losses, self.loss_key), **self.step_metrics(losses),
                "grad_norm": float(grad_norm) if grad_norm is not None else None,
                "lr": self.optimizer.param_groups[0]["lr"], "skipped": not ok}

    def step_metrics(self, losses: list[dict]) -> dict:
        """Figures logged next to ``loss`` each step, from the micro-batches' logged {sum, count} pairs."""
        return {}

    @torch.no_grad()
    def eval_losses(self) -> list[dict] | None:
        """The logged pairs of every validation micro-batch (None without validation data)."""
        if self.valid_batches is None:
            return None
        for chunk in self.model:
            chunk.eval()
        stream = self.data_stream(self.valid_batches, 0)  # the same validation batches every time
        losses = []
        for _ in range(self.recipe.train.eval_steps):
            losses += self._run_batches(stream, self.valid_batches.num_microbatches, forward_only=True)
        for chunk in self.model:
            chunk.train()
        return losses

    def evaluate(self) -> float | None:
        losses = self.eval_losses()
        return None if losses is None else self._reduce_loss(losses, self.loss_key)

    def eval_record(self) -> dict:
        """What one evaluation adds to the step's metrics record (``val_loss``; stages add their figures)."""
        return {"val_loss": self.evaluate()}

    # ---------------------------------------------------------------- loop
    def _request_stop(self, signum, frame):
        self._stop_requested = True
        self._print(f"received signal {signum}: will checkpoint after this step")

    def _agree_to_stop(self) -> bool:
        flag = torch.tensor([1.0 if self._stop_requested else 0.0],
                            device="cuda" if torch.cuda.is_available() else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def save(self) -> None:
        ckpt.save(self.ckpt_dir, self.step, self.model, self.optimizer, self.scheduler, self.recipe,
                  {"step": self.step, "consumed_samples": self.consumed_samples,
                   "data_blend": self.data_record,
                   **(self.tokenizer_record.as_state() if self.tokenizer_record else {})},
                  keep_last=self.recipe.checkpoint.keep_last)

    def run(self) -> bool:
        """Train to ``train.steps``; False when stopped early (after checkpointing) by a signal or by
        ``train.exit_after_steps``."""
        for sig in (signal.SIGUSR1, signal.SIGTERM):
            signal.signal(sig, self._request_stop)
        t, log_every = self.recipe.train, self.recipe.logging.log_interval
        stream = self.data_stream(self.train_batches, self.consumed_samples)
        start_step, started = self.step, time.perf_counter()
        if self.step >= t.steps:
            self._already_finished()
            return True
        last = {}
        while self.step < t.steps:
            last = self.train_step(stream)
            self.step += 1
            self.consumed_samples += t.global_batch_size
            self.throughput.step()
            if not math.isfinite(last["loss"]):
                raise FloatingPointError(f"loss is {last['loss']} at step {self.step}; lower optimizer.lr or "
                                         "check the data")
            record = {"step": self.step, **last}
            if self.step % t.eval_interval == 0 or self.step == t.steps:
                eval_start = time.perf_counter()
                record.update(self.eval_record())
                self.throughput.exclude(time.perf_counter() - eval_start)
            if self.step % log_every == 0 or "val_loss" in record:
                self.metrics.log({**record, **self.throughput.report()})
            stop = self._agree_to_stop()
            # a time-boxed invocation (train.exit_after_steps) ends like a stop signal: checkpoint, exit 75
            boxed = bool(t.exit_after_steps) and self.step - start_step >= t.exit_after_steps and self.step < t.steps
            if self.step % self.recipe.checkpoint.save_interval == 0 or self.step == t.steps or stop or boxed:
                save_start = time.perf_counter()
                self.save()
                self.throughput.exclude(time.perf_counter() - save_start)
            if stop:
                self._print(f"checkpointed at step {self.step} after a stop signal; resume with --resume auto")
                return False
            if boxed:
                self._print(f"checkpointed at step {self.step} of {t.steps}: train.exit_after_steps="
                            f"{t.exit_after_steps} steps of this invocation are done; run the same command again "
                            "to continue (--resume auto)")
                return False
        self._write_summary(last, time.perf_counter() - started, start_step)
        return True

    def _already_finished(self) -> None:
        """A re-run of a finished run: say so; ``summary.json`` stays as the finishing run wrote it (written
        now only if that run died before writing it, with the loss its metrics logged at the last step)."""
        t, kept = self.recipe.train, (self.run_dir / SUMMARY_FILE).exists()
        self._print(f"{self.run_dir} is already complete: step {self.step} of train.steps={t.steps}, nothing to do "
                    f"({SUMMARY_FILE} {'kept' if kept else 'written from its metrics'}). To train further raise "
                    "train.steps (with --set checkpoint.override_scheduler=true), or start another logging.run_name")
        if not kept:
            self._write_summary(last_logged(self.run_dir, self.step), 0.0, self.step)

    def _write_summary(self, last: dict, seconds: float, start_step: int) -> None:
        if not parallel.is_rank0():
            return
        summary = {"recipe": self.recipe.name, "steps": self.step, "final_loss": last.get("loss"),
                   "consumed_samples": self.consumed_samples, "seconds": seconds,
                   "steps_this_invocation": self.step - start_step, "checkpoint": str(self.ckpt_dir)}
        path = self.run_dir / SUMMARY_FILE
        tmp = path.with_name(f".{SUMMARY_FILE}.tmp")
        tmp.write_text(json.dumps(summary, indent=2))
        os.replace(tmp, path)

    def _print(self, message: str) -> None:
        if parallel.is_rank0():
            print(f"[midm train] {message}", flush=True)

    def close(self) -> None:
        self.metrics.close()
        for lock in self.locks:
            lock.release()
        parallel.destroy()

