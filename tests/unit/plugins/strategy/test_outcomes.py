"""The outcomes strategy gives a host's outcome in the controller only for the plain per-host outcome task, and gives
what cloudsec.guardduty.batch_outcome would have given."""

import json

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine
from ansible_collections.cloudsec.guardduty.plugins.strategy.outcomes import (
    ActionClasses, HostLists, ParsedOutcomes, PerTask, PlacedHosts, is_end_of_role, looked_up_outcome, outcome_task_vars)

ACTION = "cloudsec.guardduty.batch_outcome"
OUTCOMES = {"i-1": [True, False, "isolation failed: AccessDenied"], "i-2": [False, True, ""]}


def host_vars(host, instance_id, outcomes=None, none=False):
    outcomes = None if none else (outcomes or OUTCOMES)
    return {"inventory_hostname": host, "instance_id": instance_id,
            "ansible_facts": {engine.OUTCOMES_FACT: json.dumps(outcomes)} if outcomes is not None else {}}


def test_a_failed_instance_fails_its_host_by_name_and_the_others_are_ok_or_changed():
    assert looked_up_outcome(ACTION, {}, {}, host_vars("web-1", "i-1")) == {
        "changed": False, "failed": True, "msg": "web-1 (i-1): isolation failed: AccessDenied"}
    assert looked_up_outcome(ACTION, {}, {}, host_vars("app-1", "i-2")) == {"changed": True, "msg": "app-1 (i-2): no stage failed"}
    assert looked_up_outcome(ACTION, {}, {}, host_vars("idle-1", "i-9")) == {"changed": False, "msg": "idle-1 (i-9): no stage failed"}


def test_the_lookup_answers_as_the_action_plugin_computes_from_the_run():
    run = {"placed": [{"instance_ids": ["i-1", "i-2"], "hosts": {"i-1": "web-1", "i-2": "app-1"}}],
           "current": [{"instance_ids": ["i-2"], "hosts": {"i-2": "app-1"}}],
           "failures": {"i-1": "isolation failed: gone"}, "record": {"i-2": {"isolation": {"changed": True}}}}
    outcomes = engine.run_outcomes(run)
    for host, instance_id in (("web-1", "i-1"), ("app-1", "i-2")):
        failed, changed, msg = engine.host_outcome(run, host, instance_id)
        expected = dict({"changed": changed, "msg": msg}, **({"failed": True} if failed else {}))
        assert looked_up_outcome(ACTION, {}, {}, host_vars(host, instance_id, outcomes)) == expected


def test_any_other_task_or_keyword_or_a_host_without_outcomes_goes_through_a_worker():
    assert looked_up_outcome("ansible.builtin.debug", {}, {}, host_vars("web-1", "i-1")) is None
    assert looked_up_outcome(ACTION, {"gather_from": []}, {}, host_vars("web-1", "i-1")) is None
    assert looked_up_outcome(ACTION, {"forget_credentials": True}, {}, host_vars("web-1", "i-1")) is None
    for keyword in ("when", "loop", "register", "delegate_to", "failed_when", "changed_when", "until", "run_once"):
        assert looked_up_outcome(ACTION, {}, {keyword: ["x"]}, host_vars("web-1", "i-1")) is None, keyword
    assert looked_up_outcome(ACTION, {}, {}, host_vars("web-1", "i-1", none=True)) is None


def test_the_outcomes_every_host_shares_are_parsed_once():
    parse = ParsedOutcomes()
    text = json.dumps(OUTCOMES)
    first = parse(text)
    assert first == OUTCOMES and parse(text) is first and parse(str(text)) is first
    assert parse(json.dumps({"i-3": [False, False, ""]})) == {"i-3": [False, False, ""]}  # a new run's outcomes


def test_only_the_implicit_end_of_role_task_is_given_no_variables():
    class Task:
        def __init__(self, action, raw, implicit):
            self.action, self.args, self.implicit = action, {"_raw_params": raw}, implicit

    assert is_end_of_role(Task("meta", "role_complete", True))
    assert not is_end_of_role(Task("meta", "role_complete", False))  # written in a playbook: linear's own way
    assert not is_end_of_role(Task("meta", "flush_handlers", True))
    assert not is_end_of_role(Task("cloudsec.guardduty.batch_outcome", "", False)) and not is_end_of_role(None)


def base_lists(hosts, failed, unreachable):
    """What StrategyBase.add_tqm_variables gives (get_hosts_remaining, get_failed_hosts)."""
    ignore = set(failed).union(unreachable)
    return [h for h in hosts if h not in ignore], [h for h in hosts if h in failed]


def test_the_host_lists_are_ansibles_and_follow_every_change_of_the_hosts():
    lists = HostLists()
    hosts = [f"h{i}" for i in range(6)]
    failed, unreachable = {}, {}
    steps = [lambda: None, lambda: failed.update(h1=True), lambda: unreachable.update(h4=True),
             lambda: failed.pop("h1"), lambda: failed.update(h2=True),  # as many failed as before, another host
             lambda: hosts.append("h6"), unreachable.clear]
    for step in steps:
        step()
        assert lists(hosts, failed, unreachable) == base_lists(hosts, failed, unreachable)
    replaced = list(reversed(hosts))  # the play's hosts refreshed: a new list
    assert lists(replaced, failed, unreachable) == base_lists(replaced, failed, unreachable)


def test_each_host_gets_its_own_copy_of_the_lists():
    lists, hosts = HostLists(), ["a", "b"]
    first, _failed = lists(hosts, {}, {})
    first.append("changed by a task")
    assert lists(hosts, {}, {}) == (["a", "b"], [])


def facts_of(run):
    return {engine.RUN_FACT: engine.encode_run(run), engine.OUTCOMES_FACT: json.dumps(OUTCOMES)}


RUN = {"placed": [{"instance_ids": ["i-1", "i-2"], "hosts": {"i-1": "web-1", "i-2": "app-1"}}]}


def test_the_outcome_task_is_given_the_host_the_instance_it_was_placed_with_and_the_outcomes_only():
    placed = PlacedHosts()
    task_vars = outcome_task_vars("web-1", ACTION, {}, {}, "Batches | fail the instances whose stage failed",
                                  facts_of(RUN), placed)
    assert task_vars == {"inventory_hostname": "web-1", "instance_id": "i-1",
                         "ansible_facts": {engine.OUTCOMES_FACT: json.dumps(OUTCOMES)}}
    # and the lookup answers from them as from the host's every variable
    assert looked_up_outcome(ACTION, {}, {}, task_vars) == looked_up_outcome(ACTION, {}, {}, host_vars("web-1", "i-1"))


def test_every_variable_when_the_host_was_not_placed_or_the_task_needs_more():
    placed, facts = PlacedHosts(), facts_of(RUN)
    assert outcome_task_vars("web-2", ACTION, {}, {}, "x", facts, placed) is None  # a host the run did not place
    assert outcome_task_vars("web-1", ACTION, {}, {}, "outcome of {{ instance_id }}", facts, placed) is None
    assert outcome_task_vars("web-1", ACTION, {}, {"when": ["x"]}, "x", facts, placed) is None
    assert outcome_task_vars("web-1", ACTION, {"gather_from": []}, {}, "x", facts, placed) is None
    assert outcome_task_vars("web-1", "ansible.builtin.debug", {}, {}, "x", facts, placed) is None
    assert outcome_task_vars("web-1", ACTION, {}, {}, "x", {engine.RUN_FACT: facts[engine.RUN_FACT]}, placed) is None
    assert outcome_task_vars("web-1", ACTION, {}, {}, "x", None, placed) is None


def test_a_new_run_is_read_again():
    placed = PlacedHosts()
    assert placed(engine.encode_run(RUN)) == {"web-1": "i-1", "app-1": "i-2"}
    moved = {"placed": [{"instance_ids": ["i-3"], "hosts": {"i-3": "web-1"}}]}
    assert placed(engine.encode_run(moved)) == {"web-1": "i-3"}
    assert placed(None) == {}


def test_a_play_runs_with_what_existed_at_its_start_frozen_and_every_variable_given_back_after(monkeypatch):
    """run() freezes what exists when the play starts out of the collector (the inventory's hosts and their variables:
    scanned on every full collection otherwise), runs linear with the slim get_vars, and gives the manager its own
    get_vars back, even when the play raises."""
    import gc

    from ansible.plugins.strategy import linear as linear_strategy
    from ansible.plugins.strategy.linear import StrategyModule as Linear
    from ansible_collections.cloudsec.guardduty.plugins.strategy.outcomes import StrategyModule

    action_loader = linear_strategy.action_loader

    class Manager:
        def get_vars(self, *args, **kwargs):
            return {"every": "variable"}

    hosts_variables = [{"instance_id": f"i-{n}", "tags": {}} for n in range(100)]  # what the inventory built before the play
    seen = {}

    def linear_run(strategy, iterator, play_context):
        seen["frozen"] = gc.get_freeze_count()
        seen["hosts_variables_tracked"] = gc.is_tracked(hosts_variables[0])
        seen["action_loader"] = linear_strategy.action_loader
        seen["end_of_role"] = strategy._variable_manager.get_vars(task=type("T", (), {
            "implicit": True, "action": "meta", "args": {"_raw_params": "role_complete"}})())
        raise RuntimeError("the play failed")

    monkeypatch.setattr(Linear, "run", linear_run)
    strategy = StrategyModule.__new__(StrategyModule)
    strategy._variable_manager = Manager()
    gc.unfreeze()
    try:
        try:
            strategy.run(None, None)
        except RuntimeError:
            pass
        else:
            raise AssertionError("the play's error was swallowed")
        assert seen["frozen"] >= len(hosts_variables)  # the hosts' variables among what was frozen
        assert seen["hosts_variables_tracked"]  # frozen, not untracked: still freed by reference counting
        assert seen["end_of_role"] == {}
        assert strategy._variable_manager.get_vars() == {"every": "variable"}  # the class's own again
        assert isinstance(seen["action_loader"], ActionClasses) and linear_strategy.action_loader is action_loader
        assert "get_vars" not in vars(strategy._variable_manager)
    finally:
        gc.unfreeze()


def test_a_tasks_role_is_looked_up_in_the_play_once_per_role_and_play(monkeypatch):
    from ansible.plugins.strategy.linear import StrategyModule as Linear
    from ansible_collections.cloudsec.guardduty.plugins.strategy.outcomes import StrategyModule

    looked_up = []

    def play_lookup(strategy, task, play):
        looked_up.append((task._role, play))
        return ("cached", task._role, play)

    monkeypatch.setattr(Linear, "_get_cached_role", play_lookup)
    strategy = StrategyModule.__new__(StrategyModule)
    strategy._cached_roles = {}

    class Task:
        def __init__(self, role):
            self._role = role

    isolate, batches, play, next_play = object(), object(), object(), object()
    for _host in range(3):
        assert strategy._get_cached_role(Task(isolate), play) == ("cached", isolate, play)
        assert strategy._get_cached_role(Task(batches), play) == ("cached", batches, play)
    assert strategy._get_cached_role(Task(isolate), next_play) == ("cached", isolate, next_play)
    assert looked_up == [(isolate, play), (batches, play), (isolate, next_play)]


def test_a_tasks_keywords_and_fields_are_read_once_per_task_and_each_result_gets_its_own_fields():
    class Task:
        def __init__(self, name):
            self.name, self.reads, self.dumps = name, 0, 0

        def __getattr__(self, keyword):  # the keywords, looked up through the task's blocks and role
            self.reads += 1
            return None

        def dump_attrs(self):
            self.dumps += 1
            return {"name": self.name, "action": ACTION}

    per_task, first, second = PerTask(), Task("outcome"), Task("next")
    fields = []
    for _host in range(3):
        assert per_task(first).keywords == {"when": None, "loop": None, "loop_with": None, "register": None,
                                            "delegate_to": None, "failed_when": None, "changed_when": None,
                                            "until": None, "run_once": None}
        fields.append(per_task(first).fields())
    assert first.reads == 9 and first.dumps == 1
    assert fields[0] == {"name": "outcome", "action": ACTION} and fields[0] is not fields[1]
    assert per_task(second).fields()["name"] == "next" and second.reads == 9 and second.dumps == 1


def test_an_actions_class_is_looked_up_once_per_collections_list_and_anything_else_goes_to_ansibles_loader():
    class Loader:
        def __init__(self):
            self.lookups = []
            self.package = "ansible.plugins.action"

        def get(self, name, *args, **kwargs):
            self.lookups.append((name, args, kwargs))
            return f"class of {name}" if kwargs.get("class_only") else f"instance of {name}"

    loader = Loader()
    classes = ActionClasses(loader)
    for _host in range(3):
        assert classes.get("meta", class_only=True, collection_list=None) == "class of meta"
        assert classes.get(ACTION, class_only=True, collection_list=["cloudsec.guardduty"]) == f"class of {ACTION}"
    assert classes.get(ACTION, class_only=True, collection_list=[]) == f"class of {ACTION}"
    assert classes.get("debug", task="t") == "instance of debug"  # an action plugin made for a task: every time
    assert classes.get("debug", task="t") == "instance of debug"
    assert [name for name, _args, _kwargs in loader.lookups] == ["meta", ACTION, ACTION, "debug", "debug"]
    assert classes.package == "ansible.plugins.action"


def test_the_end_of_role_is_run_for_every_host_at_once_and_the_next_task_given(monkeypatch):
    from ansible.plugins.strategy.linear import StrategyModule as Linear
    from ansible_collections.cloudsec.guardduty.plugins.strategy.outcomes import StrategyModule

    class Task:
        def __init__(self, action, raw, implicit):
            self.action, self.args, self.implicit = action, {"_raw_params": raw}, implicit

    end_of_role, outcome = Task("meta", "role_complete", True), Task(ACTION, "", False)
    flush = Task("meta", "flush_handlers", True)
    steps = [[("h1", end_of_role), ("h2", end_of_role)], [("h1", end_of_role)], [("h1", outcome), ("h2", outcome)],
             [("h1", flush), ("h2", flush)], []]
    monkeypatch.setattr(Linear, "_get_next_task_lockstep", lambda strategy, hosts, iterator: steps.pop(0))
    strategy = StrategyModule.__new__(StrategyModule)
    strategy._tqm = type("TQM", (), {"_terminated": False})()
    ran = []
    strategy._execute_meta = lambda task, play_context, iterator, host: ran.append((host, task.args["_raw_params"]))
    assert strategy._get_next_task_lockstep(["h1", "h2"], None) == [("h1", outcome), ("h2", outcome)]
    assert ran == [("h1", "role_complete"), ("h2", "role_complete"), ("h1", "role_complete")]
    # any other meta task (flush_handlers) is linear's, host by host; and the play's end is the play's end
    assert strategy._get_next_task_lockstep(["h1", "h2"], None) == [("h1", flush), ("h2", flush)]
    assert strategy._get_next_task_lockstep(["h1", "h2"], None) == [] and len(ran) == 3


# -- every host's next task worked out once when they all stand at the same place ------------------
ROLE_TASKS = "- {name: r1 first, debug: {msg: one}}\n- {name: r1 second, debug: {msg: two}}\n"
PLAY = {
    "hosts": "all", "gather_facts": False, "roles": ["r1", "r1"],  # the second r1 is skipped for a host r1 is done for
    "handlers": [{"name": "a handler", "debug": {"msg": "handled"}}],
    "tasks": [
        {"name": "first", "debug": {"msg": "1"}},
        {"block": [{"name": "in block", "debug": {"msg": "b"}}, {"name": "in block 2", "debug": {"msg": "b2"}}],
         "rescue": [{"name": "rescue", "debug": {"msg": "r"}}],
         "always": [{"name": "always", "debug": {"msg": "a"}}]},
        {"name": "r1 again", "import_role": {"name": "r1"}},
        {"meta": "flush_handlers"},
        {"name": "last", "debug": {"msg": "z"}},
    ],
}


def _play_iterator(tmp_path, play_source, hosts):
    from ansible import context
    from ansible.executor.play_iterator import PlayIterator
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play import Play
    from ansible.playbook.play_context import PlayContext
    from ansible.vars.manager import VariableManager

    context.CLIARGS = ImmutableDict(tags=[], skip_tags=[], start_at_task=None)
    (tmp_path / "roles" / "r1" / "tasks").mkdir(parents=True, exist_ok=True)
    (tmp_path / "roles" / "r1" / "tasks" / "main.yml").write_text(ROLE_TASKS)
    loader = DataLoader()
    loader.set_basedir(str(tmp_path))
    inventory = InventoryManager(loader=loader, sources=[])
    for name in hosts:
        inventory.add_host(name, group="all")
    manager = VariableManager(loader=loader, inventory=inventory)
    play = Play.load(play_source, variable_manager=manager, loader=loader)
    iterator = PlayIterator(inventory=inventory, play=play, play_context=PlayContext(play=play), variable_manager=manager,
                            all_vars=manager.get_vars(play=play))
    return iterator, [inventory.get_host(h) for h in hosts]


def _walk(iterator, hosts, next_tasks, on_step):
    """Every step of a play as the strategy gets it: [[(host, task name), ...], ...]; `on_step(step, host_tasks)` plays
    what the hosts' results would do to the iterator."""
    from ansible.executor.play_iterator import IteratingStates

    steps, left = [], list(hosts)
    while left and len(steps) < 40:
        host_tasks = next_tasks(left, iterator)
        if not host_tasks:
            break
        steps.append([(host.name, task.get_name() or task.action) for host, task in host_tasks])
        on_step(len(steps) - 1, host_tasks)
        left = [h for h in left if iterator.get_state_for_host(h.name).run_state != IteratingStates.COMPLETE
                and not iterator.is_failed(h)]
    return steps


def _results(iterator, host_tasks, step, fail=None, notify=None, role_done_for=None):
    from ansible.executor.play_iterator import IteratingStates

    for host, task in host_tasks:
        meta = task._get_meta() if task.action == "meta" else None
        if meta == "flush_handlers":  # as StrategyBase._execute_meta: the host's notified handlers run next
            state = iterator.get_state_for_host(host.name)
            for notification in list(state.handler_notifications):
                for handler in (h for b in iterator._play.handlers for h in b.block if h.name == notification):
                    handler.notify_host(host)
                iterator.clear_notification(host.name, notification)
            state.pre_flushing_run_state, state.run_state = state.run_state, IteratingStates.HANDLERS
        if meta == "role_complete" and role_done_for and host.name in role_done_for:
            iterator._play._get_cached_role(task._role)._completed[host.name] = True  # only the host that ran its tasks
        if fail and (step, host.name) in fail:
            iterator.mark_host_failed(host)
        if notify and (task.get_name(), host.name) in notify:  # as a result that notifies: flushing runs it
            iterator.add_notification(host.name, iterator._play.handlers[0].block[0].name)


def test_the_next_tasks_worked_out_once_are_linears_step_by_step(tmp_path):
    """Twin plays, one stepped by linear alone, the other by lockstep_when_shared where it answers: the same tasks for
    the same hosts at every step, whatever the hosts' results do (a host failed in a block and rescued, a handler
    notified for one host, a role done for only the host that ran its tasks, as after a run_once task)."""
    from ansible.plugins.strategy.linear import StrategyModule as Linear
    from ansible_collections.cloudsec.guardduty.plugins.strategy import outcomes

    def linear(hosts, iterator):
        return Linear._get_next_task_lockstep(None, hosts, iterator)

    answered = []

    def shared_else_linear(hosts, iterator):
        host_tasks = outcomes.lockstep_when_shared(hosts, iterator)
        answered.append(host_tasks is not None)
        return host_tasks if host_tasks is not None else linear(hosts, iterator)

    names = ["h1", "h2", "h3", "h4"]
    cases = [
        {},  # every host alike from start to end
        {"fail": {(3, "h2")}},  # h2 fails in the block: rescued and always for h2 alone, then alike again
        {"notify": {("first", "h3")}},  # a handler notified for h3 only, run at the explicit flush
        {"notify": {("last", "h3")}},  # notified after it: the implicit flush at the end is h3's alone
        {"role_done_for": {"h1"}},  # r1 done for h1 only: the second r1 is skipped for h1, not for the others
        {"fail": {(0, "h4")}, "role_done_for": {"h1", "h2"}},
    ]
    for case in cases:
        by_linear, by_shared = (_play_iterator(tmp_path, PLAY, names), _play_iterator(tmp_path, PLAY, names))
        expected = _walk(*by_linear, linear, lambda step, ht, it=by_linear[0]: _results(it, ht, step, **case))
        answered.clear()
        got = _walk(*by_shared, shared_else_linear, lambda step, ht, it=by_shared[0]: _results(it, ht, step, **case))
        assert got == expected, case
        assert any(answered), case  # the shared answer was taken where the hosts stood alike
        for name in names:
            # the positions, run and fail states and nested states (HostState's text), each twin over its own blocks
            assert str(by_shared[0].get_state_for_host(name)) == str(by_linear[0].get_state_for_host(name))
        if case.get("notify"):
            assert [("h3", "a handler")] in got  # the handler runs for h3 alone
        if case.get("notify") == {("last", "h3")}:
            assert [("h3", "meta")] in got  # the implicit flush, for h3 alone
        if case.get("role_done_for") == {"h1"}:
            assert [("h2", "r1 : r1 first"), ("h3", "r1 : r1 first"), ("h4", "r1 : r1 first")] in got  # h1 skips it
            assert not all(answered)  # where h1's next task differs, linear's host-by-host answer
    assert by_shared[0].get_state_for_host("h1") is not by_shared[0].get_state_for_host("h2")  # each its own state


def test_a_play_that_gathers_facts_or_one_host_is_left_to_linear(tmp_path):
    from ansible_collections.cloudsec.guardduty.plugins.strategy import outcomes

    iterator, hosts = _play_iterator(tmp_path, dict(PLAY, gather_facts=True), ["h1", "h2"])
    assert outcomes.lockstep_when_shared(hosts, iterator) is None
    iterator, hosts = _play_iterator(tmp_path, PLAY, ["h1", "h2"])
    assert outcomes.lockstep_when_shared(hosts[:1], iterator) is None
    assert [(h.name, t.get_name()) for h, t in outcomes.lockstep_when_shared(hosts, iterator)] == \
        [("h1", "r1 : r1 first"), ("h2", "r1 : r1 first")]
