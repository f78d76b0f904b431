"""`ptgm bench`: every (task, method, seed) on one pre-trained run, side by side.

Split by job: :mod:`~ptgm.bench.grid` runs the grid, :mod:`~ptgm.bench.metrics` computes the curve
statistics, :mod:`~ptgm.bench.record` keeps the results record (``summary.json``, schema
:data:`~ptgm.bench.record.RECORD_SCHEMA`), :mod:`~ptgm.bench.markdown` writes the tables and plots.

The pre-training stages run once in the run directory (each reused when finished, resumed
when interrupted; skipped when every method learns from scratch, e.g. flat SAC alone); then every downstream run goes to its own worker process,
``parallel`` at a time (one per core), each checkpointed, so a stopped benchmark resumes
where it was and finished runs are skipped. The results folder gets:

- ``curves.csv``: every training episode of every run (env steps, return, length, success, achievements);
- ``summary.md`` / ``summary.json``: per (task, method), mean ± std over seeds of the final
  evaluation, the score of the first training episodes, the area under the training curve,
  and the env steps at which the training curve first reaches the threshold; rliable's interquartile mean of
  the final evaluation and the training AUC and each method's probability of improvement over the reference
  method, with 95% stratified-bootstrap intervals; and, for runs past 400k env steps, what each loses from its
  best 100k-step window after 300k to its last;
- ``learning_curves_TASK.png``: mean ± std bands per method; ``learning_curves.png``: the same, one
  panel per task in one figure (benchmarks of several tasks);
- ``achievements_TASK.png`` (Crafter): the fraction of training episodes unlocking each achievement, per
  method, beside the summary's table of them and the Crafter score;
- the goal codebook pictures and dataset coverage of the pieces, once per set of pieces in
  ``results/pieces/FINGERPRINT/`` (linked from the summary).

The results folder is also the benchmark's durable record: a finished run it holds (its
episodes in ``curves.csv``, its summary and full training settings in ``summary.json``) counts
as finished when its run directory is gone, e.g. on a fresh clone, as long as the benchmark's
settings and the run's training settings are the same as now. So a benchmark too long for
one machine's session is carried on by the next one from the committed results.
"""

from __future__ import annotations

import logging

from ptgm.bench.grid import _pretrain_stages, _run_started, run_grid, uses_pieces, uses_pretraining
from ptgm.bench.markdown import pretraining_markdown, subtask_markdown, summary_markdown, write_results
from ptgm.bench.metrics import area_under_curve, mean_std, reference_comparison, rolling_score, steps_to_threshold
from ptgm.bench.record import (
    RECORD_SCHEMA,
    benchmark_record,
    check_same_pieces,
    collect_results,
    finished_pretraining,
    recorded_runs,
)
from ptgm.domains import domain_of
from ptgm.settings import BenchConfig
from ptgm.utils import PTGMError

logger = logging.getLogger(__name__)

__all__ = ["RECORD_SCHEMA", "BenchConfig", "area_under_curve", "bench", "mean_std", "pretraining_markdown",
           "reference_comparison", "rolling_score", "run_grid", "steps_to_threshold", "subtask_markdown",
           "summary_markdown", "uses_pieces"]


def bench(config: BenchConfig) -> dict:
    domain = domain_of(config)
    if config.ray_address and not config.summarize_only:  # before hours of pre-training, not after
        from ptgm import raycluster

        raycluster.connect(config.ray_address)
    # Finished runs the results folder records and the run directory lacks are not trained again.
    selection = [(task, method, seed) for seed in range(config.seeds) for task in config.tasks
                 for method in config.methods]
    recorded = recorded_runs(config)
    # Recorded runs this benchmark does not select (other methods, tasks or seeds) stay in the record.
    carried = [run for key, run in recorded.items() if key not in selection]
    recorded = {key: run for key, run in recorded.items()
                if key in selection and not _run_started(config, *key)}  # a run directory's own state comes first
    if recorded:
        logger.info(f"[bench] {len(recorded)} finished run(s) recorded in {config.out}/summary.json count as done: "
              + ", ".join("/".join(map(str, key)) for key in recorded))
    jobs = [] if config.summarize_only else [job for job in selection if job not in recorded]
    record = benchmark_record(config)
    if not uses_pretraining(config):
        # Flat methods from scratch: nothing to pre-train or to match; a record's pieces stay with the runs of
        # other methods it carries.
        pretrained = (record or {}).get("pretrained") if carried else None
    elif record is not None and not any(uses_pieces(method) for _, method, _ in jobs) and not any(
            _run_started(config, *key) for key in selection if uses_pieces(key[1])):
        # Every run shown that uses the pieces comes from the results folder's record (runs from scratch, e.g. the
        # flat baselines' missing seeds, need none), so the numbers of its pieces come from there too (none in
        # records older than them), not from whatever pieces the run directory holds now, and none are trained.
        pretrained = record.get("pretrained")
        logger.info(f"[bench] nothing to train that uses pre-trained pieces and no run of this benchmark that used them "
              f"in {config.run_dir}: the summary takes the pre-training numbers from {config.out}/summary.json"
              + ("" if pretrained else ", which has none"))
    else:
        # Summarising trains nothing, not even a missing pre-training stage.
        pretrained = finished_pretraining(config) if config.summarize_only else _pretrain_stages(config)
        if recorded or carried:  # (then the record is this benchmark's)
            check_same_pieces(config, record, pretrained)
    failed = run_grid(config, jobs)
    score = domain.task_score(config.tasks[0])  # every task of a benchmark is scored alike (BenchConfig checks)
    results = collect_results(config, score, recorded)
    write_results(config, score, pretrained, results, carried)
    if failed:
        raise PTGMError(f"{len(failed)} of {len(jobs)} runs failed; the summary covers the others. Fix the cause "
                        "shown in their logs and rerun the same command: finished runs are reused.")
    return {"runs": results}
