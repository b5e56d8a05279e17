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
    C(make bench-org)). Here a host's outcome costs one lookup: the task is given only the host's name, the instance
    the run placed it with and the outcomes (a host the run did not place, or a task whose name is a template, gets
    every variable, as in C(linear)).
  - >-
    A task with C(when), C(loop), C(register), C(delegate_to), C(failed_when), C(changed_when), C(until) or C(run_once), a
    host without the outcomes fact, or an ansible-core older than 2.19 (whose internals differ), is run by C(linear) as usual.
  - >-
    Two costs of C(linear) that grow with the hosts times the hosts are also taken out, for every task, with the same
    result. The implicit end-of-role task (which reads no variable) is run for every host at once, as Ansible's own meta
    action, not prepared host by host with every variable. The lists C(ansible_current_hosts) and C(ansible_failed_hosts),
    which Ansible builds again for each host and task, are built again only when the play's hosts or its failed or
    unreachable hosts change.
  - >-
    linear works out each host's next task host by host (a copy of its state and a walk of the play's blocks). When
    every host stands at the same place of a play that gathers no facts (none failed, rescued or ended alone, no handler
    notified for some only, no role done for some only that changes their next task, no handlers running), the next
    task is worked out once and each host given its own copy of the state; otherwise linear works it out as usual.
  - >-
    What every host would read again the same is read once: a task's keywords and fields (once per task), the class of
    its action (once per play), its role in the play (once per role). A looked-up outcome is handed to Ansible's result
    processing as the results of the meta tasks Ansible runs in the controller are, not pickled through the workers'
    queue and read back with a copy of the task per host.
  - >-
    The isolate, release, scan and eradicate playbooks use it for their outcome plays, and isolate for its first play.
    It changes nothing else, except that what exists when a play starts is frozen out of Python's garbage collector
    (C(gc.freeze)): the hosts' variables were scanned on every full collection, 8 s of CPU at 2,000 hosts.
"""

import gc
import json

from ansible.executor.play_iterator import IteratingStates
from ansible.plugins.strategy import linear as linear_strategy
from ansible.plugins.strategy.linear import StrategyModule as LinearStrategyModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine

try:  # ansible-core 2.19: what a worker sends back
    from ansible.executor.task_result import _RawTaskResult
except ImportError:  # older: every task goes through linear
    _RawTaskResult = None

OUTCOME_ACTIONS = frozenset(("cloudsec.guardduty.batch_outcome",))
# Keywords that need the worker's TaskExecutor (conditionals, loops, results kept): such a task goes through linear.
NEEDS_EXECUTOR = ("when", "loop", "loop_with", "register", "delegate_to", "failed_when", "changed_when", "until", "run_once")


class ReadOnce:
    """`read(text)` of a fact's text, read again only for another text: every host holds the same text, and reading it
    for each host would make the play quadratic again (10 ms a host at 5,000 hosts)."""

    _UNREAD = object()

    def __init__(self):
        self.text, self.value = self._UNREAD, None

    def __call__(self, text):
        if text is not self.text and text != self.text:
            self.text, self.value = text, self.read(text)
        return self.value

    @staticmethod
    def read(text):
        raise NotImplementedError


class ParsedOutcomes(ReadOnce):
    """The outcomes fact (ansible_facts.cloudsec_guardduty_outcomes) parsed once."""

    read = staticmethod(json.loads)


class HostLists:
    """`ansible_current_hosts` and `ansible_failed_hosts`, the two lists Ansible adds to every host's variables on every
    task (StrategyBase.add_tqm_variables), computed again only when the play's hosts or the failed or unreachable
    hosts change. Ansible builds both for each host, a walk of every host each time: quadratic in the hosts, 0.5 ms a
    host and task at 5,000 hosts, the end-of-role tasks included (docs/benchmarks.md, `make bench-org`)."""

    def __init__(self):
        self._hosts, self._count, self._failed, self._unreachable, self._lists = None, None, None, None, None

    def __call__(self, hosts, failed, unreachable):
        """(remaining hosts, failed hosts) of `hosts`, the play's host names in order, as new lists."""
        failed_now, unreachable_now = tuple(failed), tuple(unreachable)
        if (self._hosts is not hosts or self._count != len(hosts) or self._failed != failed_now
                or self._unreachable != unreachable_now):
            ignore = set(failed_now).union(unreachable_now)
            failed_set = set(failed_now)
            self._lists = ([host for host in hosts if host not in ignore], [host for host in hosts if host in failed_set])
            self._hosts, self._count, self._failed, self._unreachable = hosts, len(hosts), failed_now, unreachable_now
        return list(self._lists[0]), list(self._lists[1])


def is_plain_outcome_task(task_action, task_args, task_keywords):
    """The per-host cloudsec.guardduty.batch_outcome task (not the run-once one gathering the run), without any keyword
    only a worker applies."""
    if task_action not in OUTCOME_ACTIONS or task_args.get("gather_from") is not None or task_args.get("forget_credentials"):
        return False
    return not any(task_keywords.get(keyword) for keyword in NEEDS_EXECUTOR)


def looked_up_outcome(task_action, task_args, task_keywords, task_vars, parse=json.loads):
    """The per-host outcome task's result, {"changed", "msg"[, "failed"]}, from the outcomes fact; None when the task
    is not that task, has a keyword only a worker applies, or the host has no outcomes to look up."""
    if not is_plain_outcome_task(task_action, task_args, task_keywords):
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


class PlacedHosts(ReadOnce):
    """{host name: instance id} of the hosts the run placed in its batches (ansible_facts.cloudsec_guardduty_run,
    `placed`), read once."""

    @staticmethod
    def read(text):
        run = (engine.decode_run(text) if isinstance(text, str) else None) or {}
        return {host: instance_id for batch in run.get("placed") or [] for instance_id, host in (batch.get("hosts") or {}).items()}


def outcome_task_vars(host_name, task_action, task_args, task_keywords, task_name, facts, placed_hosts):
    """The only variables the per-host outcome task is looked up with (looked_up_outcome): the host's name, the
    instance the run placed it with, and the outcomes fact. None, for Ansible's every variable instead, when the
    task is not the plain outcome task, its name is a template, the host has no outcomes or was not placed by the
    run (a second host of the same instance, a host added since)."""
    if not is_plain_outcome_task(task_action, task_args, task_keywords) or "{{" in str(task_name or "") or "{%" in str(task_name or ""):
        return None
    outcomes = (facts or {}).get(engine.OUTCOMES_FACT)
    instance_id = placed_hosts((facts or {}).get(engine.RUN_FACT)).get(host_name)
    if not isinstance(outcomes, str) or not outcomes or not instance_id:
        return None
    return {"inventory_hostname": host_name, "instance_id": instance_id, "ansible_facts": {engine.OUTCOMES_FACT: outcomes}}


class PerTask:
    """What a task gives every host alike, read once per task: its keywords (NEEDS_EXECUTOR, each looked up through its
    blocks and role) and its fields as a worker sends them (Task.dump_attrs). Read for each host, they cost about
    0.1 ms and 0.4 ms a host (the outcome task at 5,000 hosts: 7.5 s, 5.4 s with the fields dumped once)."""

    def __init__(self):
        self.task, self.keywords, self._fields = None, None, None

    def __call__(self, task):
        if self.task is not task:
            self.task, self._fields = task, None
            self.keywords = {keyword: getattr(task, keyword, None) for keyword in NEEDS_EXECUTOR}
        return self

    def fields(self):
        if self._fields is None:
            self._fields = self.task.dump_attrs()
        return dict(self._fields)


class ActionClasses:
    """Ansible's action loader, each action's class found once per collections list. linear looks up the class of the
    task's action for every host and task, its end-of-role tasks included (PluginLoader.get: 10,000 to 15,000 lookups a
    play of 5,000 hosts, about 0.2 s); the answer does not change within a play."""

    def __init__(self, loader):
        self._loader, self._classes = loader, {}

    def get(self, name, *args, **kwargs):
        if args or set(kwargs) - {"class_only", "collection_list"} or not kwargs.get("class_only"):
            return self._loader.get(name, *args, **kwargs)
        key = (name, tuple(kwargs.get("collection_list") or ()))
        if key not in self._classes:
            self._classes[key] = self._loader.get(name, *args, **kwargs)
        return self._classes[key]

    def __getattr__(self, attribute):
        return getattr(self._loader, attribute)


def is_end_of_role(task):
    """The implicit `meta: role_complete` task Ansible adds at the end of every role (Role.compile): it marks the
    role done for the host and reads no variable."""
    return bool(task is not None and getattr(task, "implicit", False) and getattr(task, "action", None) == "meta"
                and (getattr(task, "args", None) or {}).get("_raw_params") == "role_complete")


def _same_place(state, other):
    """Whether two hosts' states (HostState) lead to the same next tasks: HostState's own comparison (the play's
    blocks, the positions, the run and fail states, the nested states) and what it leaves out that the play iterator
    reads, the top level's handlers and notifications and the rescue and start-at-task marks."""
    return other is state or (other is not None and other == state and other.handlers == state.handlers
                              and other.handler_notifications == state.handler_notifications
                              and other.did_rescue == state.did_rescue
                              and other.did_start_at_task == state.did_start_at_task)


def _one_host_per_roles_done(play, hosts):
    """The first host of each way the play's roles are done (Role._completed): the play iterator skips the tasks of a
    role done for a host, a choice made host by host. A role is done only for the host that ran its tasks, so after a
    run_once task the first host differs from the others."""
    done = [role._completed for roles in play.role_cache.values() for role in roles if role._completed]
    if not done:
        return hosts[:1]
    first_of = {}
    for host in hosts:
        first_of.setdefault(tuple(host.name in completed for completed in done), host)
    return list(first_of.values())


def lockstep_when_shared(hosts, iterator):
    """linear's next tasks (LinearStrategyModule._get_next_task_lockstep), worked out once when every host stands at the
    same place of a play that gathers no facts: the play iterator's next state and task for one host, each host given
    its own copy of that state, the play's task list followed to that task as linear does. linear works it out host by
    host (a copy of the state and a walk of the play's blocks each, 0.07 ms a host: 0.35 s a task at 5,000 hosts).

    None when the hosts do not all stand at the same place (one failed, was rescued, ended, has a handler notified), when
    a role done for some hosts only gives them another next task, while handlers run (each host gets those notified for
    it), or when the play gathers facts (whether to gather may depend on the host's facts): linear then works it out
    host by host, as it always does."""
    if len(hosts) < 2 or getattr(iterator, "_host_states", None) is None:
        return None
    play = iterator._play
    if play.gather_facts is not False:
        return None
    states = iterator._host_states
    first = states.get(hosts[0].name)
    # running handlers, the iterator gives each host only the handlers notified for it (Handler.is_host_notified)
    if first is None or first.run_state == IteratingStates.HANDLERS:
        return None
    if not all(_same_place(first, states.get(host.name)) for host in hosts[1:]):
        return None
    state, task = iterator.get_next_task_for_host(hosts[0], peek=True)
    for host in _one_host_per_roles_done(play, hosts)[1:]:
        other_state, other_task = iterator.get_next_task_for_host(host, peek=True)
        if other_task is not task or not _same_place(state, other_state):
            return None
    if task is None:
        return []
    # linear's own walk of the play's task list to the task the hosts are given
    loops, start = 0, iterator.cur_task
    while loops <= 1:
        try:
            current = iterator.all_tasks[iterator.cur_task]
        except IndexError:
            iterator.cur_task = 0
            loops += 1
        else:
            iterator.cur_task += 1
            if current._uuid == task._uuid:
                break
    else:
        iterator.cur_task = start
        return None  # linear raises its "mismatch" assertion: let it, with its own message
    for host in hosts:
        iterator.set_state_for_host(host.name, state.copy())  # each its own: some of Ansible's setters change it in place
    if current._get_meta() == "flush_handlers":
        iterator.all_tasks[iterator.cur_task:iterator.cur_task] = [h for b in iterator._play.handlers for h in b.block]
    return [(host, task) for host in hosts]


class StrategyModule(LinearStrategyModule):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsed_outcomes = ParsedOutcomes()
        self._host_lists = HostLists()
        self._placed_hosts = PlacedHosts()
        self._per_task = PerTask()
        self._cached_roles = {}

    def add_tqm_variables(self, vars, play):  # pylint: disable=redefined-builtin  # StrategyBase's signature
        self._set_hosts_cache(play, refresh=False)
        remaining, failed = self._host_lists(self._hosts_cache, self._tqm._failed_hosts, self._tqm._unreachable_hosts)
        vars["ansible_current_hosts"] = remaining
        vars["ansible_failed_hosts"] = failed

    def _outcome_vars(self, host, task):
        """outcome_task_vars for this host and task, or None."""
        if _RawTaskResult is None or host is None or task is None:
            return None
        try:
            facts = self._variable_manager._fact_cache.get(host.name)
        except KeyError:
            return None
        keywords = self._per_task(task).keywords
        return outcome_task_vars(host.name, task.action, task.args or {}, keywords, getattr(task, "name", None), facts,
                                 self._placed_hosts)

    def run(self, iterator, play_context):
        # What exists when a play starts (the inventory's hosts and their variables, the run's facts: 500,000 objects
        # at 2,000 hosts) lives as long as the run. Python's collector scanned all of it on every full collection,
        # 8 s of the controller's CPU at 2,000 hosts; frozen, it is still freed by reference counting.
        gc.freeze()
        # linear computes every host's variables before it looks at the task: one VariableManager.get_vars a host and
        # task, 2 to 3 ms each at thousands of hosts. The end-of-role task reads none: it gets none (20 s a play of
        # two roles at 5,000 hosts). The per-host outcome task reads three: it gets those (12 s at 5,000 hosts).
        manager = self._variable_manager
        every_variable = manager.get_vars

        def get_vars(*args, **kwargs):
            task = kwargs.get("task")
            if is_end_of_role(task):
                return {}
            slim = self._outcome_vars(kwargs.get("host"), task)
            return slim if slim is not None else every_variable(*args, **kwargs)

        manager.get_vars = get_vars
        action_loader = linear_strategy.action_loader
        linear_strategy.action_loader = ActionClasses(action_loader)
        try:
            return super().run(iterator, play_context)
        finally:
            del manager.get_vars  # the class's own again
            linear_strategy.action_loader = action_loader

    def _get_next_task_lockstep(self, hosts, iterator):
        """linear's next task and its hosts, except the implicit end-of-role task: Ansible's own meta action is run here
        for each host (StrategyBase._execute_meta: the role marked done for the host), without linear's per-host
        preparation of a task (its variables, a templar, its action's plugin, a pass over the results: 0.05 ms a host,
        0.5 s an end of role at 5,000 hosts), and the next task is given instead."""
        while True:
            host_tasks = lockstep_when_shared(hosts, iterator) if _RawTaskResult is not None else None
            if host_tasks is None:
                host_tasks = super()._get_next_task_lockstep(hosts, iterator)
            if (_RawTaskResult is None or not host_tasks or self._tqm._terminated
                    or not all(is_end_of_role(task) for _host, task in host_tasks)):
                return host_tasks
            for host, task in host_tasks:
                self._execute_meta(task, None, iterator, host)  # role_complete reads no play context

    def _get_cached_role(self, task, play):
        """The play's role of a task (StrategyBase._get_cached_role), found once per role and play: Play._get_cached_role
        compares the task's role with each cached role of its path, field by field, for every host's result and end of
        role (about 0.15 ms each: 25,000 a run of 5,000 hosts)."""
        role = task._role
        found = self._cached_roles.get(id(role))
        if found is None or found[0] is not role or found[1] is not play:
            found = self._cached_roles[id(role)] = (role, play, super()._get_cached_role(task, play))
        return found[2]

    def _queue_task(self, host, task, task_vars, play_context):
        result = None
        if _RawTaskResult is not None:
            result = looked_up_outcome(task.action, task.args or {}, self._per_task(task).keywords, task_vars,
                                       self._parsed_outcomes)
        if result is None:
            return super()._queue_task(host, task, task_vars, play_context)
        result["_ansible_no_log"] = bool(play_context.no_log)
        # As a worker's result arrives (StrategyBase._queue_task, WorkerProcess): the queued task remembered, the result
        # where the results thread puts it, read by _process_pending_results. Not through the final queue: pickled, then
        # read back with a copy of the task per host, about 0.5 ms a host. The result holds the play's task itself, as the
        # results of the meta tasks Ansible runs in the controller do (StrategyBase._execute_meta).
        queued = {"host": host, "task": task, "task_vars": task_vars, "play_context": play_context}
        self._queued_task_cache[(host.name, task._uuid)] = queued
        self._tqm.send_callback("v2_runner_on_start", host, task)
        raw = _RawTaskResult(host=host, task=task, return_data=result, task_fields=self._per_task(task).fields())
        with self._results_lock:
            self._results.append(raw)
        self._pending_results += 1
        return None
