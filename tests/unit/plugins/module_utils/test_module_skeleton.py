import gc
import json
import threading

import pytest
from ansible.module_utils.testing import patch_module_args
from botocore.exceptions import ClientError

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import module_skeleton as br
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import DescribeError
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import InstanceProblem

A, B, C = "i-0123456789abcdef0", "i-11111111", "i-22222222"


def denied(action="ModifyInstanceAttribute"):
    return ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "not allowed"}}, action)


@pytest.fixture(autouse=True)
def module_environment():
    """What ansible-playbook gives a module: its output profile stays set until the module exits."""
    with patch_module_args({}):
        yield


def make_module(diff=False, check_mode=False):
    """A real AnsibleAWSModule (fail_json/exit_json print the output and exit, as in a task)."""
    args = {"instance_ids": [], "_ansible_diff": diff, "_ansible_check_mode": check_mode}
    with patch_module_args(args):
        return AnsibleAWSModule(argument_spec={"instance_ids": {"type": "list", "elements": "str"}}, supports_check_mode=True)


def output_of(capsys, function, *args, **kwargs):
    """(exit status, the module's JSON output) of a call that ends the module."""
    with pytest.raises(SystemExit) as ended:
        function(*args, **kwargs)
    return ended.value.code, json.loads(capsys.readouterr().out)


# -- validate_ids -------------------------------------------------------------------------------------
def test_validate_ids_keeps_order_and_drops_duplicates():
    assert br.validate_ids(make_module(), [B, " " + A, B]) == [B, A]


def test_validate_ids_fails_naming_each_malformed_id(capsys):
    status, out = output_of(capsys, br.validate_ids, make_module(), [A, "i-bad"], policies={})
    assert status == 1
    assert out["msg"] == "malformed instance ids; nothing was changed"
    assert out["instances"] == {} and out["policies"] == {}
    assert out["errors"] == [{"instance_id": "i-bad", "action": "validate", "code": None,
                              "message": "i-bad: validate: malformed instance id: expected i- followed by 8 or 17 hexadecimal characters"}]


def test_validate_ids_empty_batch_fails_only_when_some_are_required(capsys):
    assert br.validate_ids(make_module(), []) == []
    status, out = output_of(capsys, br.validate_ids, make_module(), [], nothing_done="nothing was captured", require_some=True)
    assert status == 1 and out["msg"] == "malformed or no instance ids; nothing was captured" and out["errors"] == []


# -- batch-wide describe failures ---------------------------------------------------------------------
def test_failing_on_error_fails_with_aws_code(capsys):
    def describe():
        with br.failing_on_error(make_module(), "could not describe the instances; nothing was changed"):
            raise denied("DescribeInstances")
    status, out = output_of(capsys, describe)
    assert status == 1
    assert out["msg"].startswith("could not describe the instances; nothing was changed")
    assert out["error"]["code"] == "UnauthorizedOperation"


def test_failing_on_describe_error_names_the_batch_action(capsys):
    def describe():
        with br.failing_on_describe_error(make_module()):
            raise DescribeError("DescribeTargetHealth", denied("DescribeTargetHealth"))
    status, out = output_of(capsys, describe)
    assert status == 1
    message = "An error occurred (UnauthorizedOperation) when calling the DescribeTargetHealth operation: not allowed"
    assert out["msg"] == f"batch: DescribeTargetHealth: {message} (UnauthorizedOperation); nothing was changed"
    assert out["errors"] == [{"instance_id": None, "action": "DescribeTargetHealth", "code": "UnauthorizedOperation",
                              "message": message}]


def test_failing_on_describe_error_lets_other_errors_through():
    with pytest.raises(KeyError):
        with br.failing_on_describe_error(make_module()):
            raise KeyError("not a describe error")


# -- per instance work --------------------------------------------------------------------------------
def test_map_instances_keeps_order_and_runs_concurrently():
    started, release = [], threading.Event()

    def work(instance_id):
        started.append(instance_id)
        if len(started) == 3:
            release.set()
        assert release.wait(10), "the instances were not worked on at the same time"
        return {"id": instance_id}

    assert br.map_instances([C, A, B], work) == [(C, {"id": C}, None), (A, {"id": A}, None), (B, {"id": B}, None)]


def test_map_instances_problems_stay_with_their_instance():
    def work(instance_id):
        if instance_id == A:
            raise br.with_result(InstanceProblem(A, "CreateTags", "no", "Refused"), {"changed": True, "calls": ["CreateTags"]})
        if instance_id == B:
            raise InstanceProblem(B, "ReadRecord", "damaged")
        raise denied()

    outcomes = br.map_instances([A, B, C], work, unexpected_action="StartMalwareScan")
    assert [(i, r) for i, r, unused_p in outcomes] == [(A, {"changed": True, "calls": ["CreateTags"]}), (B, None), (C, None)]
    assert [str(p) for unused_i, unused_r, p in outcomes] == [
        f"{A}: CreateTags: no (Refused)", f"{B}: ReadRecord: damaged",
        f"{C}: StartMalwareScan: not allowed (UnauthorizedOperation)"]


def test_map_instances_unexpected_errors_propagate_without_an_action():
    def work(instance_id):
        raise denied()

    with pytest.raises(ClientError):
        br.map_instances([A], work)
    assert br.map_instances([], lambda i: 1 / 0) == []


def test_run_per_instance_collects_results_and_problems():
    results, problems = {}, [InstanceProblem(C, "DescribeInstances", "instance not found")]

    def work(instance_id):
        if instance_id == B:
            raise InstanceProblem(B, "ReadRecord", "damaged")
        return {"changed": True, "calls": ["x"]}

    br.run_per_instance([A, B], work, results, problems, default_result={"changed": False, "path": None})
    assert [str(p) for p in problems] == [f"{C}: DescribeInstances: instance not found", f"{B}: ReadRecord: damaged"]
    assert results == {A: {"changed": True, "calls": ["x"]},
                       B: {"changed": False, "path": None, "error": problems[1].as_dict()}}


# -- apply with a partial result ----------------------------------------------------------------------
def test_apply_with_partial_result_reports_the_calls_done_before_the_failure():
    made = []

    def make_calls(calls):
        done = []
        for call in calls:
            if call == "second":
                exc = denied()
                exc.action, exc.done = "ModifyInstanceAttribute", list(done)
                raise exc
            made.append(call)
            done.append(call)

    result = {"changed": True, "before": 1, "after": 2, "calls": ["first", "second"]}
    with pytest.raises(InstanceProblem) as raised:
        br.apply_with_partial_result(A, result, ["first", "second"], make_calls, check_mode=False, action="apply")
    assert made == ["first"]
    assert raised.value.action == "ModifyInstanceAttribute" and raised.value.code == "UnauthorizedOperation"
    assert raised.value.result == {"changed": True, "before": 1, "after": None, "calls": ["first"]}
    assert result["after"] == 2  # the planned result itself is left as it was


def test_apply_with_partial_result_uses_the_default_action_and_no_call_is_no_change():
    with pytest.raises(InstanceProblem) as raised:
        br.apply_with_partial_result(A, {"changed": True, "calls": ["c"]}, ["c"], lambda calls: 1 / 0, False, "apply")
    assert raised.value.action == "apply" and raised.value.result == {"changed": False, "after": None, "calls": []}


def test_apply_with_partial_result_makes_no_call_in_check_mode_or_without_calls():
    made = []
    planned = {"changed": True, "calls": ["c"]}
    assert br.apply_with_partial_result(A, planned, ["c"], made.extend, check_mode=True) is planned
    assert br.apply_with_partial_result(A, {"changed": False}, [], made.extend, check_mode=False) == {"changed": False}
    assert made == []
    assert br.apply_with_partial_result(A, planned, ["c"], made.extend, check_mode=False) is planned
    assert made == ["c"]


# -- output -------------------------------------------------------------------------------------------
def test_finish_fails_naming_every_problem_and_keeps_every_result(capsys):
    results = {A: {"changed": True, "before": {"x": 1}, "after": {"x": 2}, "calls": ["c"]},
               B: {"changed": False, "before": {"x": 1}, "after": {"x": 1}, "calls": []}}
    problems = [InstanceProblem(C, "DescribeInstances", "instance not found in this account and region")]
    status, out = output_of(capsys, br.finish, make_module(diff=True), [A, B, C], results, problems, policies={"r": 1})
    assert status == 1
    assert out["msg"] == f"1 of 3 instances failed: {C}: DescribeInstances: instance not found in this account and region"
    assert out["changed"] is True and out["policies"] == {"r": 1}
    assert out["instances"][C] == {"changed": False, "calls": [], "error": problems[0].as_dict()}
    assert out["errors"] == [problems[0].as_dict()]
    assert out["diff"] == {"before": {A: {"x": 1}}, "after": {A: {"x": 2}}}


def test_finish_exits_when_nothing_failed_with_custom_diff_and_order(capsys):
    results = {B: {"changed": False, "path": "/b"}, A: {"changed": False, "path": "/a"}}
    status, out = output_of(capsys, br.finish, make_module(diff=True), [A, B], results, [],
                            diff=lambda r: {"before": {}, "after": sorted(r)}, order=[A, B])
    assert status == 0 and out["changed"] is False and out["errors"] == []
    assert list(out["instances"]) == [A, B] and out["diff"] == {"before": {}, "after": [A, B]}


def test_finish_without_diff_mode_or_with_own_failure_word(capsys):
    problems = [InstanceProblem(A, "Guard", "protected", "Refused")]
    status, out = output_of(capsys, br.finish, make_module(), [A, B], {}, problems, failed="refused or failed",
                            default_result={"changed": False, "terminated": False})
    assert status == 1 and "diff" not in out
    assert out["msg"] == f"1 of 2 instances refused or failed: {A}: Guard: protected (Refused)"
    assert out["instances"] == {A: {"changed": False, "terminated": False, "error": problems[0].as_dict()}}


# -- the process's garbage collector -----------------------------------------------------------------------

@pytest.fixture
def collector():
    """The collector as a test leaves it: enabled, nothing frozen."""
    yield
    gc.unfreeze()
    gc.enable()


def test_long_lived_holds_collection_inside_then_freezes_what_was_made(collector):
    gc.unfreeze()
    with br.long_lived():
        assert not gc.isenabled()
        made = [{"model": n} for n in range(1000)]  # what a client's service model is made of
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(made)  # out of every later collection's scan
    assert made[-1] == {"model": 999}  # frozen, not freed


def test_long_lived_resumes_collection_when_the_block_fails(collector):
    with pytest.raises(ValueError):
        with br.long_lived():
            raise ValueError("no region")
    assert gc.isenabled()


def test_exit_batch_freezes_the_process_s_objects_before_it_exits(collector, capsys):
    gc.unfreeze()
    module = make_module()
    code, out = output_of(capsys, br.exit_batch, module, [A], [], {"changed": False, "instances": {}, "errors": []})
    assert code == 0 and out["instances"] == {}
    assert gc.get_freeze_count() > 0  # the interpreter's shutdown has no collection pass over them
