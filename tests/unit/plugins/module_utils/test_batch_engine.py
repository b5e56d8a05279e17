import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as batches
from ansible_collections.cloudsec.guardduty.plugins.module_utils.batch_engine import BatchError, account_batches, result_for

ROLE_A = "arn:aws:iam::111122223333:role/GuardDutyResponder"


def hostvars(**hosts):
    return hosts


def test_hosts_are_grouped_by_account_region_and_role_in_a_stable_order():
    hv = hostvars(
        web={"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012"},
        api={"instance_id": "i-2", "region": "eu-west-1", "account_id": "123456789012"},
        w1={"instance_id": "i-3", "region": "us-east-1", "account_id": "111122223333", "responder_role_arn": ROLE_A},
        w2={"instance_id": "i-4", "region": "us-east-1", "responder_role_arn": ROLE_A},
        app={"instance_id": "i-5", "aws_region": "us-east-1", "account_id": "123456789012"},
    )
    batches = account_batches(["web", "api", "w1", "w2", "app"], hv)
    assert [(b["account_id"], b["region"], b["role_arn"], b["instance_ids"]) for b in batches] == [
        ("111122223333", "us-east-1", ROLE_A, ["i-3", "i-4"]),
        ("123456789012", "eu-west-1", None, ["i-2"]),
        ("123456789012", "us-east-1", None, ["i-1", "i-5"]),
    ]
    assert batches[0]["hosts"] == {"i-3": "w1", "i-4": "w2"}


def test_size_splits_a_large_batch():
    hv = {f"h{n}": {"instance_id": f"i-{n}", "region": "us-east-1"} for n in range(5)}
    batches = account_batches(list(hv), hv, size=2)
    assert [b["instance_ids"] for b in batches] == [["i-0", "i-1"], ["i-2", "i-3"], ["i-4"]]


@pytest.mark.parametrize("variables, message", [
    ({"region": "us-east-1"}, "no instance_id"),
    ({"instance_id": "i-1"}, "not an AWS region"),
    ({"instance_id": "i-1", "region": "mars"}, "not an AWS region"),
    ({"instance_id": "i-1", "region": "us-east-1", "responder_role_arn": "GuardDutyResponder"}, "not an IAM role ARN"),
    ({"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012", "responder_role_arn": ROLE_A},
     "is not in account 123456789012"),
])
def test_hosts_that_cannot_be_placed_are_named(variables, message):
    with pytest.raises(BatchError) as exc:
        account_batches(["bad", "good"], {"bad": variables, "good": {"instance_id": "i-2", "region": "us-east-1"}})
    assert "host bad" in str(exc.value) and message in str(exc.value)


def test_two_hosts_for_one_instance_are_refused():
    hv = {"a": {"instance_id": "i-1", "region": "us-east-1"}, "b": {"instance_id": "i-1", "region": "us-east-1"}}
    with pytest.raises(BatchError, match="hosts a and b both name instance i-1"):
        account_batches(["a", "b"], hv)


def test_result_for_picks_the_instance_from_a_batched_loop():
    registered = {"results": [
        {"item": {"instance_ids": ["i-1"]}, "instances": {"i-1": {"changed": True}}},
        {"item": {"instance_ids": ["i-2", "i-3"]}, "failed": True, "msg": "AccessDenied on DescribeInstances"},
        {"skipped": True, "item": {"instance_ids": ["i-4"]}},
    ]}
    assert result_for(registered, "i-1") == {"changed": True}
    failed = result_for(registered, "i-3")
    assert failed["changed"] is False and "AccessDenied" in failed["error"]["message"]
    assert result_for(registered, "i-4") is None
    assert result_for({"instances": {"i-9": {"changed": False}}}, "i-9") == {"changed": False}


def test_result_for_reads_ec2_isolation_like_every_module():
    registered = {"results": [{"item": {"instance_ids": ["i-1", "i-2"]},
                               "instances": {"i-1": {"state": "isolated"},
                                             "i-2": {"state": "failed", "error": {"message": "boom"}}}}]}
    assert result_for(registered, "i-2") == {"state": "failed", "error": {"message": "boom"}}
    assert result_for(registered, "i-1")["state"] == "isolated"


# -- the play-wide record ---------------------------------------------------------------------------
BATCH_US = {"account_id": "123456789012", "region": "us-east-1", "role_arn": None,
            "instance_ids": ["i-1", "i-2"], "hosts": {"i-1": "web", "i-2": "api"}}
BATCH_EU = {"account_id": "111122223333", "region": "eu-west-1", "role_arn": ROLE_A,
            "instance_ids": ["i-3"], "hosts": {"i-3": "w1"}}


def leader_registers(*items):
    """What record.yml reads: each batch leader's registered loop (non-leaders registered nothing)."""
    return [{"results": [item]} for item in items] + [{"results": [], "skipped": True}]


def test_stage_parts_take_each_instance_from_its_batch_and_blame_the_batch_when_it_failed_whole():
    ok = {"item": BATCH_US, "changed": True, "instances": {"i-1": {"changed": True, "error": None},
                                                           "i-2": {"changed": False, "error": "i-2: gone"}}}
    failed = {"item": BATCH_EU, "failed": True, "msg": "AccessDenied: sts"}
    parts = batches.stage_parts(leader_registers(ok, failed))
    assert parts["i-1"] == {"changed": True, "error": None}
    assert parts["i-2"]["error"] == "i-2: gone"
    assert parts["i-3"] == {"changed": False, "error": {"instance_id": "i-3", "action": "batch", "message": "AccessDenied: sts"}}


def test_stage_parts_leave_out_batches_the_stage_skipped_and_read_a_duplicated_loop_once():
    skipped = {"item": BATCH_EU, "skipped": True, "false_condition": "pending | length > 0"}
    ok = {"item": BATCH_US, "instances": {"i-1": {"changed": False}, "i-2": {"changed": True}}}
    parts = batches.stage_parts([{"results": [ok, skipped]}, {"results": [ok, skipped]}])
    assert parts == {"i-1": {"changed": False}, "i-2": {"changed": True}}


def test_stage_parts_give_no_part_to_an_instance_a_successful_call_was_not_asked_about():
    # evidence: i-2 was captured earlier for the incident, so only i-1 was passed to the module
    ok = {"item": BATCH_US, "changed": True, "instances": {"i-1": {"changed": True, "path": "/e/i-1"}}}
    assert batches.stage_parts(leader_registers(ok)) == {"i-1": {"changed": True, "path": "/e/i-1"}}
    # failed for i-1 (registered with failed_when: false, so `failed` is false): still no part for i-2
    refused = dict(ok, failed=False, msg="1 of 1 instances failed", instances={"i-1": {"error": "i-1: refused"}})
    assert batches.stage_parts(leader_registers(refused)) == {"i-1": {"error": "i-1: refused"}}
    # a call that failed before any per-instance work (instances empty): the whole batch
    early = {"item": BATCH_US, "failed": False, "failed_when_result": False, "msg": "DescribeSecurityGroups: throttled",
             "instances": []}
    assert {i: p["error"]["message"] for i, p in batches.stage_parts(leader_registers(early)).items()} == {
        "i-1": "DescribeSecurityGroups: throttled", "i-2": "DescribeSecurityGroups: throttled"}


def test_record_keeps_stages_in_order_and_failures_name_every_failed_stage_in_order():
    record = batches.record_parts({}, "preflight", {"i-1": {"error": None}, "i-2": {"error": None}})
    record = batches.record_parts(record, "isolation", {
        "i-1": {"changed": True, "error": None},
        "i-2": {"changed": False, "error": {"action": "ec2:ModifyNetworkInterfaceAttribute", "code": "UnauthorizedOperation",
                                            "message": "not allowed"}}})
    record = batches.record_parts(record, "tags", {"i-2": {"error": "later"}, "i-9": None})
    assert list(record["i-2"]) == ["preflight", "isolation", "tags"]
    assert "i-9" not in record
    assert batches.instance_failure(record, "i-1") is None
    assert batches.instance_failure(record, "i-2") == (
        "isolation failed: ec2:ModifyNetworkInterfaceAttribute UnauthorizedOperation not allowed; tags failed: later")
    assert batches.instance_failure(record, "i-404") is None
    assert batches.failed_instances(record) == {"i-2": batches.instance_failure(record, "i-2")}


def test_remaining_batches_drop_failed_instances_hosts_out_of_the_play_and_empty_batches():
    record = {"i-1": {"isolation": {"error": "i-1: refused"}}, "i-2": {"isolation": {"error": None}}}
    assert batches.remaining_batches([BATCH_US, BATCH_EU], record) == [
        dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"}), BATCH_EU]
    assert batches.remaining_batches([BATCH_US, BATCH_EU], record, hosts=["api"]) == [
        dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"})]


def test_an_evidence_failure_keeps_the_instance_in_the_later_stages_and_still_fails_it():
    """Containment never waits on evidence: a failed snapshot marks the instance, it does not spare it the network."""
    evidence = ("protection", "snapshots", "evidence", "scan")
    record = {"i-1": {"snapshots": {"error": {"action": "CreateSnapshots", "code": "SnapshotLimitExceeded", "message": "quota"}}},
              "i-2": {"protection": {"error": "refused"}, "isolation": {"error": "terminated"}}}
    left = batches.remaining_batches([BATCH_US, BATCH_EU], record, evidence_stages=evidence)
    assert left == [dict(BATCH_US, instance_ids=["i-1"], hosts={"i-1": "web"}), BATCH_EU]   # i-2 failed a containment stage
    assert batches.remaining_batches([BATCH_US], record) == []    # without evidence stages, any failure drops the instance
    assert batches.instance_failure(record, "i-1", evidence) is None
    # ... and the host still fails at the end, naming every failed stage and its cause
    failures = batches.failed_instances(record)
    assert failures == {"i-1": "snapshots failed: CreateSnapshots SnapshotLimitExceeded quota",
                        "i-2": "protection failed: refused; isolation failed: terminated"}
    assert batches.run_failures([BATCH_US, BATCH_EU], left, failures) == failures


def test_batch_leaders_map_each_batch_to_its_leader_or_first_host():
    assert batches.batch_leaders([BATCH_US, BATCH_EU]) == {"web": BATCH_US, "w1": BATCH_EU}
    led = dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"}, leader="web")
    assert batches.batch_leaders([led]) == {"web": led}
    assert batches.batch_leaders(None) == {}


def test_remaining_batches_by_leader_keep_the_leader_and_drop_a_batch_whose_leader_left():
    # the leaders' play: only "web" and "w1" are in it; web's own instance failed isolation
    record = {"i-1": {"isolation": {"error": "i-1: refused"}}}
    left = batches.remaining_batches([BATCH_US, BATCH_EU], record, hosts=["web", "w1"], by_leader=True)
    assert left == [dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"}, leader="web"), dict(BATCH_EU, leader="w1")]
    assert batches.batch_leaders(left) == {"web": left[0], "w1": left[1]}   # still run by web, not by api
    # w1 left the play (a task failed on it): its batch goes, and api's instance is kept though api is not in the play
    assert batches.remaining_batches(left, record, hosts=["web"], by_leader=True) == [left[0]]
    # the play of every host: a batch from the leaders' play is led again by its first host left
    assert batches.remaining_batches(left, record, hosts=["api"]) == [dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"})]


def test_run_failures_give_every_unfinished_instance_a_cause():
    failures = {"i-1": "isolation failed: i-1: refused"}
    left = [dict(BATCH_US, instance_ids=["i-2"], hosts={"i-2": "api"}, leader="web")]   # EU's leader w1 left
    assert batches.run_failures([BATCH_US, BATCH_EU], left, failures) == {
        "i-1": "isolation failed: i-1: refused",
        "i-3": "not finished: the run stopped on w1, the host running its batch, before the batch's stages ended"}
    assert batches.run_failures([BATCH_US, BATCH_EU], [BATCH_US, BATCH_EU], {}) == {}
    # nothing came back from the leaders at all: every instance is unfinished
    assert set(batches.run_failures([BATCH_US, BATCH_EU], [], {})) == {"i-1", "i-2", "i-3"}


@pytest.mark.parametrize("role_errors, caller, verify, error", [
    ({}, {"account": "111122223333", "arn": "arn:aws:sts::111122223333:assumed-role/GuardDutyResponder/s"}, True, None),
    ({ROLE_A: "AccessDenied"}, {}, True, f"cannot assume {ROLE_A}: AccessDenied"),
    ({}, {"failed": True, "msg": "could not connect"}, True, "sts:GetCallerIdentity in eu-west-1 failed: could not connect"),
    ({}, {"account": "999999999999", "arn": "arn:aws:iam::999999999999:user/x"}, True,
     "the credentials are account 999999999999's, the instance is in account 111122223333"),
    ({}, None, False, None),
])
def test_preflight_parts_say_why_an_instance_cannot_be_worked_on(role_errors, caller, verify, error):
    callers = leader_registers(dict(caller, item=BATCH_EU)) if caller is not None else []
    parts = batches.preflight_parts([BATCH_EU], role_errors, callers, verify)
    assert parts["i-3"]["error"] == error
    assert parts["i-3"]["role_arn"] == ROLE_A
    assert parts["i-3"]["account_id"] == "111122223333"


# -- several batches per module process (module_utils/module_batches.py) ----------------------------------
def _call(name, ids, region="us-east-1", **options):
    return ({"name": name}, dict({"instance_ids": ids, "region": region, "state": "isolated"}, **options))


def test_process_calls_spread_batches_by_instances_and_keep_their_order():
    calls = [_call("a", ["i-1"]), _call("b", ["i-2", "i-3", "i-4"], access_key="AK1", secret_key="s1"),
             _call("c", ["i-5", "i-6"], region="eu-west-1"), _call("d", ["i-7"])]
    grouped = batches.process_calls(calls, 2)
    assert [[b["name"] for b in group] for group, _options in grouped] == [["b", "d"], ["a", "c"]]
    first, second = (options for _group, options in grouped)
    # largest first, each to the least loaded: b (3) | c (2), a (1) | d (1) to the first of two equal loads
    assert first == {"state": "isolated", "batches": [
        {"instance_ids": ["i-2", "i-3", "i-4"], "region": "us-east-1", "access_key": "AK1", "secret_key": "s1"},
        {"instance_ids": ["i-7"], "region": "us-east-1"}]}
    assert [e["instance_ids"] for e in second["batches"]] == [["i-1"], ["i-5", "i-6"]]
    assert "instance_ids" not in second and "region" not in second


def test_the_options_the_engine_gives_each_batch_are_those_the_module_takes_from_each_batch():
    from ansible_collections.cloudsec.guardduty.plugins.module_utils import module_batches

    assert set(batches.PER_BATCH_OPTIONS) == set(module_batches.batches_spec()["options"])
    entry = {"instance_ids": ["i-2"], "region": "eu-west-1", "access_key": "AK", "secret_key": "s", "session_token": "t"}
    merged = module_batches.batch_params({"state": "isolated", "instance_ids": None, "region": "us-east-1", "batches": [entry]}, entry)
    assert merged == dict(entry, state="isolated", batches=None)


def test_process_calls_never_mix_batches_whose_other_options_differ():
    calls = [_call("a", ["i-1"]), _call("b", ["i-2"], state="released"), _call("c", ["i-3"])]
    grouped = batches.process_calls(calls, 8)
    assert sorted(([b["name"] for b in group], options["state"]) for group, options in grouped) == [
        (["a"], "isolated"), (["b"], "released"), (["c"], "isolated")]


def test_process_calls_make_no_more_processes_than_batches_or_asked():
    calls = [_call(n, [f"i-{n}"]) for n in "abcde"]
    assert len(batches.process_calls(calls, 2)) == 2
    assert len(batches.process_calls(calls[:1], 4)) == 1


def test_batch_results_are_each_batch_own_answer_or_the_process_failure_for_each():
    group = [{"name": "a"}, {"name": "b"}]
    answers = [{"changed": True, "instances": {"i-1": {}}}, {"failed": True, "msg": "b: AccessDenied"}]
    assert batches.batch_results(group, {"changed": True, "batches": answers}) == list(zip(group, answers))
    died = batches.batch_results(group, {"failed": True, "msg": "MODULE FAILURE: killed"})
    assert [(b["name"], r["failed"], r["msg"]) for b, r in died] == [
        ("a", True, "MODULE FAILURE: killed"), ("b", True, "MODULE FAILURE: killed")]
    short = batches.batch_results(group, {"changed": False, "batches": answers[:1]})
    assert all(r["failed"] for _b, r in short)


def test_a_responder_session_ending_within_the_margin_is_assumed_again_and_only_that_one():
    import datetime
    now = datetime.datetime(2026, 12, 7, 4, 0, tzinfo=datetime.timezone.utc)

    def session(minutes_left, **extra):
        ends = now + datetime.timedelta(minutes=minutes_left)
        return dict({"access_key": "ASIA", "secret_key": "s", "session_token": "t", "expiration": str(ends),
                     "region": "eu-west-1", "session_name": "cloudsec-guardduty-INC-1", "duration_seconds": 3600}, **extra)

    credentials = {"arn:aws:iam::111122223333:role/R": session(14),   # inside the 15 minutes: renewed
                   "arn:aws:iam::444455556666:role/R": session(16),   # not yet
                   "arn:aws:iam::777788889999:role/R": session(-5),   # already over: renewed
                   "arn:aws:iam::222233334444:role/R": {"access_key": "ASIA"}}  # no Expiration kept: left alone
    due = batches.sessions_to_renew(credentials, now.timestamp())
    assert due == [{"role_arn": "arn:aws:iam::111122223333:role/R", "region": "eu-west-1",
                    "session_name": "cloudsec-guardduty-INC-1", "duration_seconds": 3600},
                   {"role_arn": "arn:aws:iam::777788889999:role/R", "region": "eu-west-1",
                    "session_name": "cloudsec-guardduty-INC-1", "duration_seconds": 3600}]
    assert batches.RENEW_BEFORE_SECONDS == 900
