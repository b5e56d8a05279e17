"""The run's decisions (module_utils/batch_engine.py): batches in, module calls out, a part per instance, each host's outcome."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as batches

ROLE = "arn:aws:iam::111122223333:role/GuardDutyResponder"
HOSTVARS = {
    "web-1": {"instance_id": "i-1", "region": "us-east-1", "account_id": "123456789012", "guardduty_finding_ids": ["f1", "f2"],
              "guardduty_findings": [{"Id": "f1"}], "guardduty_detector_id": "d-1"},
    "app-1": {"instance_id": "i-2", "region": "us-east-1", "account_id": "123456789012", "guardduty_finding_ids": ["f2", "f3"]},
    "worker-1": {"instance_id": "i-3", "region": "us-east-1", "responder_role_arn": ROLE},
}
CREDENTIALS = {ROLE: {"access_key": "AK", "secret_key": "SK", "session_token": "ST"}}


def placed(by_leader=False, evidence=("protection",)):
    return batches.place_run(["web-1", "app-1", "worker-1"], HOSTVARS, "INC-1", evidence_stages=evidence, by_leader=by_leader)


def test_a_run_starts_with_every_host_placed_its_batches_led_by_their_first_host_and_nothing_recorded():
    run = placed()
    assert [(b["account_id"], b["instance_ids"]) for b in run["placed"]] == [("111122223333", ["i-3"]), ("123456789012", ["i-1", "i-2"])]
    assert run["current"] == run["placed"] and run["leaders"] == ["worker-1", "web-1"]
    assert run["record"] == {} and run["failures"] == {} and run["credentials_file"] is None


def test_each_batch_is_one_call_with_its_instances_region_and_its_roles_credentials_only():
    calls = batches.stage_calls(placed()["current"], {"state": "isolated"}, HOSTVARS, CREDENTIALS)
    assert [args for _batch, args in calls] == [
        {"state": "isolated", "instance_ids": ["i-3"], "region": "us-east-1", "access_key": "AK", "secret_key": "SK", "session_token": "ST"},
        {"state": "isolated", "instance_ids": ["i-1", "i-2"], "region": "us-east-1"},
    ]


def test_options_from_the_hosts_are_built_per_batch():
    run = placed()
    calls = batches.stage_calls(run["current"][1:], {}, HOSTVARS, {}, from_hosts=["finding_ids", "account_id"])
    assert calls[0][1]["finding_ids"] == ["f1", "f2", "f3"] and calls[0][1]["account_id"] == "123456789012"
    # the inventory's findings only when every host of the batch has them: app-1 has none, so the module reads GuardDuty
    assert "findings" not in batches.stage_calls(run["current"][1:], {}, HOSTVARS, {}, from_hosts=["findings"])[0][1]
    hub = batches.stage_calls(run["current"][1:], {}, HOSTVARS, {}, from_hosts=["securityhub_findings"], per_instance=False)[0][1]
    assert hub["findings"] == {"i-1": ["f1", "f2"], "i-2": ["f2", "f3"]} and hub["detector_id"] == "d-1" and "instance_ids" not in hub


def test_a_findings_module_is_not_called_for_a_batch_without_findings_and_uses_the_controllers_credentials():
    calls = batches.stage_calls(placed()["current"], {}, HOSTVARS, CREDENTIALS, from_hosts=["finding_ids"], per_instance=False,
                                use_credentials=False)
    assert [args for _b, args in calls] == [{"finding_ids": ["f1", "f2", "f3"], "region": "us-east-1"}]


def test_answered_instances_are_not_given_to_the_module_and_a_batch_left_empty_is_not_called():
    calls = batches.stage_calls(placed()["current"], {}, HOSTVARS, CREDENTIALS, answered={"i-1": {}, "i-3": {}})
    assert [args["instance_ids"] for _b, args in calls] == [["i-2"]]


def test_a_failed_containment_stage_takes_the_instance_out_of_the_later_stages_and_fails_its_host_by_name():
    run = batches.record_run(placed(), "isolation", {"i-1": {"changed": False, "error": {"action": "isolate", "message": "gone"}},
                                                     "i-2": {"changed": True}, "i-3": {"changed": False}})
    assert [b["instance_ids"] for b in run["current"]] == [["i-3"], ["i-2"]]
    assert batches.host_outcome(run, "web-1", "i-1") == (True, False, "web-1 (i-1): isolation failed: isolate gone")
    assert batches.host_outcome(run, "app-1", "i-2") == (False, True, "app-1 (i-2): no stage failed")
    assert batches.host_outcome(run, "worker-1", "i-3") == (False, False, "worker-1 (i-3): no stage failed")


def test_an_evidence_stages_failure_keeps_the_instance_in_the_containment_stages_but_fails_its_host():
    run = batches.record_run(placed(), "protection", {"i-1": {"changed": False, "error": "AccessDenied"}})
    assert [b["instance_ids"] for b in run["current"]] == [["i-3"], ["i-1", "i-2"]]
    assert batches.host_outcome(run, "web-1", "i-1")[0:2] == (True, False)


def test_a_batch_whose_leader_left_the_leaders_play_is_not_finished():
    run = batches.record_run(placed(by_leader=True), "preflight", {}, hosts=["worker-1"])  # web-1, us-east-1's leader, left
    assert batches.host_outcome(run, "app-1", "i-2") == (
        True, False, "app-1 (i-2): not finished: the run stopped on web-1, the host running its batch, before the batch's stages ended")


def test_a_per_finding_result_is_split_back_to_each_hosts_own_findings():
    batch = placed()["current"][1]
    result = {"findings": {"f1": {"changed": True}, "f2": {"changed": False}, "f3": {"changed": False}}}
    parts = batches.finding_parts([(batch, result)], HOSTVARS)
    assert parts["i-1"] == {"changed": True, "findings": {"f1": {"changed": True}, "f2": {"changed": False}}, "error": None}
    assert parts["i-2"]["changed"] is False and set(parts["i-2"]["findings"]) == {"f2", "f3"}
    failed = batches.finding_parts([(batch, {"failed": True, "msg": "AccessDenied"})], HOSTVARS)
    assert failed["i-1"]["error"] == "AccessDenied" and failed["i-1"]["findings"] == {}


def test_each_role_is_assumed_once_under_a_session_name_aws_accepts():
    assert batches.roles_to_assume(placed()["current"]) == {ROLE: "us-east-1"}
    assert batches.roles_to_assume(placed()["current"], known=CREDENTIALS) == {}
    assert batches.session_name(None, "INC 42/x") == "cloudsec-guardduty-INC-42-x"
    assert len(batches.session_name(None, "x" * 100)) == 64 and batches.session_name("mine", "INC") == "mine"


def test_the_preflight_summary_names_every_batch_its_instances_and_the_steps():
    lines = batches.run_summary(placed(), ["isolation", "", "report"], check_mode=True)
    assert lines[0] == "incident INC-1 (check mode: nothing will change)"
    assert "instances: web-1 (i-1), app-1 (i-2)" in lines and lines[-1] == "stages: isolation, report"


def test_each_batch_confirms_the_termination_of_its_own_instances_only():
    calls = batches.stage_calls(placed()["current"], {"confirm": ["i-1", "i-2", "i-3"]}, HOSTVARS, CREDENTIALS, from_hosts=["confirm"])
    assert [args["confirm"] for _b, args in calls] == [["i-3"], ["i-1", "i-2"]]


def test_a_support_case_is_one_call_per_account_for_all_its_instances_without_a_region():
    hostvars = dict(HOSTVARS, **{"api-1": {"instance_id": "i-4", "region": "eu-west-1", "account_id": "123456789012",
                                           "guardduty_finding_types": ["Backdoor:EC2/C&CActivity.B"]}})
    run = batches.place_run(["web-1", "app-1", "api-1", "worker-1"], hostvars, "INC-1")
    calls = batches.stage_calls(run["current"], {"severity_code": "high"}, hostvars, CREDENTIALS, from_hosts=["support_case"],
                                per_instance=False, per_account=True)
    assert [(b["account_id"], args["instance_ids"], "region" in args) for b, args in calls] == [
        ("111122223333", ["i-3"], False), ("123456789012", ["i-4", "i-1", "i-2"], False)]
    assert calls[1][1]["finding_types"] == ["Backdoor:EC2/C&CActivity.B"] and calls[0][1]["access_key"] == "AK"
    parts = batches.support_parts([(calls[1][0], {"created": True, "case": "case-1", "message": "opened"})])
    assert set(parts) == {"i-4", "i-1", "i-2"}
    assert parts["i-1"] == {"changed": True, "case": "case-1", "message": "opened", "re_post": None, "error": None}
    # a case that could not be opened fails every instance of its account, with the module's message
    denied = batches.support_parts([(calls[0][0], {"failed": True, "msg": "CreateCase: AccessDeniedException"})])
    assert denied == {"i-3": {"changed": False, "case": None, "message": "CreateCase: AccessDeniedException", "re_post": None,
                              "error": "CreateCase: AccessDeniedException"}}


def test_check_mode_shows_the_termination_a_real_run_makes_after_its_own_snapshots():
    refused = {"changed": False, "error": {"code": "Refused", "message": "i-1: no completed evidence snapshot of vol-1"}}
    planned = batches.planned_termination(refused, {"changed": True, "snapshots": [{"volume_id": "vol-1"}], "error": None})
    assert planned["changed"] is True and planned["terminated"] is True and "snapshots" in planned["note"]
    # the snapshot step failed, or planned nothing, or the refusal is another one: the refusal stands
    assert batches.planned_termination(refused, {"error": "SnapshotLimitExceeded", "snapshots": [{}]}) == refused
    assert batches.planned_termination(refused, {"snapshots": []}) == refused
    protected = {"error": {"code": "Refused", "message": "termination protection is on"}}
    assert batches.planned_termination(protected, {"snapshots": [{}]}) == protected


def test_every_hosts_outcome_computed_once_is_the_outcome_computed_for_that_host_alone():
    run = batches.record_run(placed(by_leader=True), "isolation", {"i-1": {"changed": False, "error": "gone"},
                                                                   "i-2": {"changed": True}}, hosts=["worker-1"])
    outcomes = batches.run_outcomes(run)
    for host, instance_id in (("web-1", "i-1"), ("app-1", "i-2"), ("worker-1", "i-3"), ("nobody", None)):
        assert batches.outcome_of(outcomes, host, instance_id) == batches.host_outcome(run, host, instance_id)
    assert outcomes["i-1"][0] is True and outcomes["i-2"][0] is True  # i-2's leader left the play: not finished


def test_the_runs_fact_is_text_that_gives_the_run_back():
    run = batches.record_run(placed(), "isolation", {"i-2": {"changed": True, "note": "{{ lookup('pipe', 'id') }}"}})
    text = batches.encode_run(run)
    assert isinstance(text, str) and batches.decode_run(text) == run
    assert batches.decode_run(run) is run and batches.decode_run("") is None and batches.decode_run(None) is None
