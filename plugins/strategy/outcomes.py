# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: outcomes
short_description: The linear strategy, with each host's outcome of a run given in the controller
version_added: 0.2.0
author: cloudsec.guardduty contributors (@cloudsec)
description:
  - >-
    Ansible's C(linear) strategy, except for one task: the per-host M(cloudsec.guardduty.batch_outcome) (without
    C(gather_from)). Its result is looked up in the outcomes the play's first task computed once for the whole run
    (C(ansible_facts.cloudsec_guardduty_outcomes)), in the controller, and handed to Ansible as a worker's result would
    be: the host is ok, changed or failed by the same message, in the recap, the callbacks and AWX's host view.
  - >-
    Why. Ansible runs every task of every host in a forked worker, about 15 to 30 ms a host on two cores; the outcome
    play, where no AWS call is made, then cost more than the containment itself at thousands of hosts (docs/benchmarks.md,
    C(make bench-org)). Here a host's outcome costs its variables and one lookup.
  - >-
    A task with C(when), C(loop), C(register), C(delegate_to), C(failed_when), C(changed_when), C(until) or C(run_once), a
    host without the outcomes fact, or an ansible-core older than 2.19 (whose internals differ), is run by C(linear) as usual.
  - >-
    The isolate, release, scan and eradicate playbooks use it for their outcome plays. It changes nothing else.
"""

import json

from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine

try:  # ansible-core 2.19: what a worker sends back
    from ansible.executor.task_result import _RawTaskResult
except ImportError:  # older: every task goes through linear
    _RawTaskResult = None

OUTCOME_ACTIONS = frozenset(("cloudsec.guardduty.batch_outcome",))
# Keywords that need the worker's TaskExecutor (conditionals, loops, results kept): such a task goes through linear.
NEEDS_EXECUTOR = ("when", "loop", "loop_with", "register", "delegate_to", "failed_when", "changed_when", "until", "run_once")


class ParsedOutcomes:
    """The outcomes fact parsed once: every host holds the same text, and parsing it for each host would make the
    play quadratic again (10 ms a host at 5,000 hosts)."""

    def __init__(self):
        self.text, self.parsed = None, None

    def __call__(self, text):
        if text is not self.text and text != self.text:
            self.text, self.parsed = text, json.loads(text)
        return self.parsed


def looked_up_outcome(task_action, task_args, task_keywords, task_vars, parse=json.loads):
    """The per-host outcome task's result, {"changed", "msg"[, "failed"]}, from the outcomes fact; None when the task
    is not that task, has a keyword only a worker applies, or the host has no outcomes to look up."""
    if task_action not in OUTCOME_ACTIONS or task_args.get("gather_from") is not None or task_args.get("forget_credentials"):
        return None
    if any(task_keywords.get(keyword) for keyword in NEEDS_EXECUTOR):
        return None
    outcomes = (task_vars.get("ansible_facts") or {}).get(engine.OUTCOMES_FACT)
    if not outcomes or not isinstance(outcomes, str):
        return None
    failed, changed, message = engine.outcome_of(parse(outcomes), task_vars.get("inventory_hostname"),
                                                 task_vars.get("instance_id"))
    result = {"changed": changed, "msg": message}
    if failed:
        result["failed"] = True
    return result


def is_end_of_role(task):
    """The implicit `meta: role_complete` task Ansible adds at the end of every role (Role.compile): it marks the
    role done for the host and reads no variable."""
    return bool(task is not None and getattr(task, "implicit", False) and getattr(task, "action", None) == "meta"
                and (getattr(task, "args", None) or {}).get("_raw_params") == "role_complete")


class StrategyModule(LinearStrategyModule):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsed_outcomes = ParsedOutcomes()

    def run(self, iterator, play_context):
        # linear computes every host's variables before it looks at the task, the end-of-role task included: one
        # VariableManager.get_vars a host and role, 2 to 3 ms each at thousands of hosts (20 s a play of two roles
        # at 5,000). That task reads none: it gets none.
        manager = self._variable_manager
        every_variable = manager.get_vars

        def get_vars(*args, **kwargs):
            return {} if is_end_of_role(kwargs.get("task")) else every_variable(*args, **kwargs)

        manager.get_vars = get_vars
        try:
            return super().run(iterator, play_context)
        finally:
            del manager.get_vars  # the class's own again

    def _queue_task(self, host, task, task_vars, play_context):
        result = None
        if _RawTaskResult is not None:
            keywords = {keyword: getattr(task, keyword, None) for keyword in NEEDS_EXECUTOR}
            result = looked_up_outcome(task.action, task.args or {}, keywords, task_vars, self._parsed_outcomes)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        result["_ansible_no_log"] = bool(play_context.no_log)
        # As a worker's result arrives (StrategyBase._queue_task, WorkerProcess): the queued task remembered, the
        # result put on the final queue, read by the results thread and processed by _process_pending_results.
        queued = {"host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        self._queued_task_cache[(host.name, task._uuid)] = queued
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(_RawTaskResult(host=host, task=task, return_data=result, task_fields=task.dump_attrs()))
        self._pending_results += 1
        return None
