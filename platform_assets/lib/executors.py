"""The local profile's executor: one process per step, except for a run of a single step.

Dagster's multiprocess executor starts a fresh Python process for every step, and each process imports Dagster,
dagster-dbt and the Definitions again (~6 s on 2 cores, `docs/benchmarks.md`). For a run of many steps that buys
parallelism; for the commonest run a person starts from the UI, one asset, it only doubles the wait: the run
worker has already loaded everything the step needs. This executor therefore runs a one-step plan in the run
worker itself (Dagster's in-process executor) and hands every other plan to the multiprocess executor, with the
same config, retries and concurrency pools. The production profile uses Celery instead (`definitions.py`).
"""

from __future__ import annotations

import dagster as dg


class OneStepInProcess(dg.Executor):
    def __init__(self, in_process: dg.Executor, multiprocess: dg.Executor):
        self._in_process, self._multiprocess = in_process, multiprocess

    def chosen(self, execution_plan) -> dg.Executor:
        return self._in_process if len(execution_plan.step_keys_to_execute) <= 1 else self._multiprocess

    def execute(self, plan_context, execution_plan):
        return self.chosen(execution_plan).execute(plan_context, execution_plan)

    @property
    def retries(self):
        return self._multiprocess.retries

    @property
    def step_dependency_config(self):
        return self._multiprocess.step_dependency_config


@dg.executor(
    name="multiprocess_unless_one_step",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def multiprocess_unless_one_step(init_context: dg.InitExecutorContext) -> dg.Executor:
    """The multiprocess executor (same config: max_concurrent, retries, start method), except that a plan of one
    step runs in the run worker's own process."""
    config = init_context.executor_config
    in_process_context = dg.InitExecutorContext(
        job=init_context.job,
        executor_def=dg.in_process_executor,
        executor_config={"retries": config["retries"], "step_dependency_config": config.get("step_dependency_config")},
        instance=init_context.instance,
    )
    return OneStepInProcess(
        dg.in_process_executor.executor_creation_fn(in_process_context),
        dg.multiprocess_executor.executor_creation_fn(init_context),
    )
