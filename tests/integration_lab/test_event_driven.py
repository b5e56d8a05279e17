"""Event-driven use (extensions/eda/) and AWX job templates (extensions/awx/) against the lab.

- The EventBridge rule's pattern (extensions/eda/eventbridge/, shown in docs/eda.md) is tested with
  EventBridge's own TestEventPattern (the lab's, tests/lab/fixes/events_test_event_pattern.py) on the
  lab's GuardDuty findings wrapped as GuardDuty delivers them to EventBridge.
- The rulebooks keep the same rules; their conditions, throttles and actions run in the real
  ansible-rulebook in tests/integration_lab/test_rulebook.py. Malformed event fields stop the event
  playbook before any AWS call.
- Every AWX survey question names a variable the role's meta/argument_specs.yml accepts.
"""

import copy
import json
import pathlib
import re
import uuid

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PATTERN_FILE = REPO / "extensions/eda/eventbridge/guardduty-findings-pattern.json"
RULEBOOK = REPO / "extensions/eda/rulebooks/guardduty_isolate.yml"
RULEBOOK_AWX = REPO / "extensions/eda/rulebooks/guardduty_isolate_awx.yml"
RULEBOOK_POLL = REPO / "extensions/eda/rulebooks/guardduty_poll_isolate.yml"
AWX_CONFIGURE = REPO / "extensions/awx/configure.yml"
ADMIN = "123456789012"
MEMBER = "111122223333"

IGNORE = "Ignore low severity findings and port probes"
ISOLATE = "Isolate the instance of a high severity compromise finding"
SCAN = "Scan the instance of any other finding of medium severity or more"


# -- GuardDuty findings as EventBridge events -------------------------------------------------------
def lab_finding_events(lab, regions=("us-east-1", "eu-west-1")):
    """The administrator's findings (its members' included), each wrapped as GuardDuty's EventBridge event.

    The detail is the finding as GuardDuty's API puts it on the wire (camelCase JSON), which is what
    GuardDuty sends to EventBridge; the event's `account` is the administrator's, whose bus receives
    its members' findings, while detail.accountId is the instance's account.
    """
    events = []
    for region in regions:
        guardduty = lab.client("guardduty", ADMIN, region)
        wire = []
        guardduty.meta.events.register("after-call.guardduty.GetFindings",
                                       lambda http_response, sink=wire, **kwargs: sink.append(json.loads(http_response.content)))
        detector_id = guardduty.list_detectors()["DetectorIds"][0]
        finding_ids = guardduty.list_findings(DetectorId=detector_id, MaxResults=50)["FindingIds"]
        guardduty.get_findings(DetectorId=detector_id, FindingIds=finding_ids)
        for finding in wire[0]["findings"]:
            events.append({"version": "0", "id": str(uuid.uuid4()), "detail-type": "GuardDuty Finding",
                           "source": "aws.guardduty", "account": ADMIN, "time": finding["updatedAt"],
                           "region": region, "resources": [], "detail": finding})
    return events


def instance_name(lab, event):
    instance_id = event["detail"]["resource"].get("instanceDetails", {}).get("instanceId")
    names = [n for n, i in lab.resources["instances"].items() if i["id"] == instance_id]
    return names[0] if names else None


def by_finding(lab, events):
    """{(finding type, instance name or None): event}."""
    keyed = {(e["detail"]["type"], instance_name(lab, e)): e for e in events}
    assert len(keyed) == len(events)
    return keyed


def variant(event, **detail):
    changed = copy.deepcopy(event)
    changed["detail"].update(detail)
    return changed


# -- the EventBridge rule ---------------------------------------------------------------------------
def matches(lab, event, pattern=None):
    pattern = pattern or PATTERN_FILE.read_text()
    return lab.client("events").test_event_pattern(EventPattern=pattern, Event=json.dumps(event))["Result"]


def test_docs_show_the_pattern_file():
    docs = (REPO / "docs/eda.md").read_text()
    shown = re.search(r"```json\n(\{\n  \"source\".*?)```", docs, re.S)
    assert shown, "docs/eda.md shows the event pattern in a ```json block"
    assert json.loads(shown.group(1)) == json.loads(PATTERN_FILE.read_text())


def test_pattern_forwards_medium_and_high_instance_findings_only(demo):
    events = by_finding(demo, lab_finding_events(demo))
    expected = {
        ("Backdoor:EC2/C&CActivity.B", "web-1"): True,
        ("UnauthorizedAccess:EC2/SSHBruteForce", "web-1"): False,           # low (2.0)
        ("CryptoCurrency:EC2/BitcoinTool.B!DNS", "app-1"): True,
        ("UnauthorizedAccess:EC2/RDPBruteForce", "bastion-1"): False,       # low
        ("Policy:S3/BucketBlockPublicAccessDisabled", None): False,         # an S3 bucket
        ("Trojan:EC2/DNSDataExfiltration", "api-1"): True,                  # eu-west-1
        ("UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS", "worker-1"): True,  # AccessKey, member
        ("UnauthorizedAccess:EC2/SSHBruteForce", "worker-1"): True,         # medium (5.0)
    }
    assert set(events) == set(expected)
    assert {key: matches(demo, event) for key, event in events.items()} == expected


def test_pattern_severity_bounds_and_other_resources(demo):
    events = by_finding(demo, lab_finding_events(demo, regions=("us-east-1",)))
    backdoor = events[("Backdoor:EC2/C&CActivity.B", "web-1")]
    s3 = events[("Policy:S3/BucketBlockPublicAccessDisabled", None)]
    assert matches(demo, variant(backdoor, severity=4)) is True
    assert matches(demo, variant(backdoor, severity=6.9)) is True
    assert matches(demo, variant(backdoor, severity=3.9)) is False
    assert matches(demo, variant(backdoor, severity=9.5)) is True        # critical
    # Numeric matching is on JSON numbers: a severity written as a string is not a number.
    assert matches(demo, variant(backdoor, severity="8")) is False
    # An S3 finding stays out whatever its severity; so do other sources and detail types.
    assert matches(demo, variant(s3, severity=8)) is False
    assert matches(demo, dict(backdoor, source="aws.securityhub")) is False
    assert matches(demo, dict(backdoor, **{"detail-type": "Security Hub Findings - Imported"})) is False
    # An AccessKey finding without an instance (an IAM user's key) stays out.
    iam_user = variant(backdoor, type="UnauthorizedAccess:IAMUser/MaliciousIPCaller",
                       resource={"resourceType": "AccessKey", "accessKeyDetails": {"userName": "alice"}})
    assert matches(demo, iam_user) is False


# -- the rulebooks (their conditions run in the real engine: tests/integration_lab/test_rulebook.py) --
def rulesets(path=RULEBOOK):
    return yaml.safe_load(path.read_text())


def test_rulebooks_have_the_same_rules():
    def conditions(path):
        return [(r["name"], r["condition"], r.get("throttle")) for r in rulesets(path)[0]["rules"]]
    # the per-finding rulebooks: the poller emits GuardDuty findings only (no Security Hub custom action rule)
    securityhub_rule = "Contain the instances of a Security Hub custom action"
    assert [c for c in conditions(RULEBOOK_AWX) if c[0] != securityhub_rule] == conditions(RULEBOOK_POLL)
    awx_actions = {r["name"]: r["action"] for r in rulesets(RULEBOOK_AWX)[0]["rules"]}
    for rule in rulesets(RULEBOOK_POLL)[0]["rules"]:
        playbook, awx = rule["action"], awx_actions[rule["name"]]
        if "run_playbook" in playbook:
            assert awx["run_job_template"]["job_args"]["extra_vars"] == playbook["run_playbook"]["extra_vars"]
        else:
            assert awx == playbook
    # the SQS rulebook's batches: the same rules, as the source's arguments (event_sources.finding_action)
    poll = {name: condition for name, condition, _ in conditions(RULEBOOK_POLL)}
    isolate = poll["Isolate the instance of a high severity compromise finding"]
    ignore = poll["Ignore low severity findings and port probes"]
    source = rulesets()[0]["sources"][0]["cloudsec.guardduty.sqs"]
    assert float(re.search(r"severity >= ([0-9.]+)", isolate).group(1)) == float(source["isolate_min_severity"])
    assert re.findall(r'type is match\("([^"]+)"\)', isolate) == source["isolate_types"]
    assert float(re.search(r"severity < ([0-9.]+)", ignore).group(1)) == float(source["scan_min_severity"])
    assert re.findall(r'type is match\("([^"]+)"\)', ignore) == source["ignore_types"]
    assert [r["throttle"]["once_within"] for r in rulesets(RULEBOOK_POLL)[0]["rules"] if "throttle" in r] == \
        ["1 hour", "1 hour"] and source["dedupe_within"] == 3600
    # and its Security Hub custom action rule is the AWX rulebook's
    assert [c for c in conditions(RULEBOOK) if c[0] == securityhub_rule] == \
        [c for c in conditions(RULEBOOK_AWX) if c[0] == securityhub_rule]


def test_sources_are_the_collections():
    assert set(rulesets()[0]["sources"][0]) == {"name", "cloudsec.guardduty.sqs"}
    assert set(rulesets(RULEBOOK_POLL)[0]["sources"][0]) == {"name", "cloudsec.guardduty.guardduty_findings"}


def instance_groups(lab, name):
    info = lab.instance(name)
    ec2 = lab.client("ec2", info["account"], info["region"])
    reservations = ec2.describe_instances(InstanceIds=[info["id"]])["Reservations"]
    groups = {}
    for nic in reservations[0]["Instances"][0]["NetworkInterfaces"]:
        groups[nic["NetworkInterfaceId"]] = sorted(g["GroupName"] for g in nic["Groups"])
    return groups


def run_event_playbook(lab, playbook, extra_vars, tmp_path, expect_rc=(0,)):
    variables = dict(extra_vars, isolate_report_dir=str(tmp_path / "reports"),
                     isolate_evidence_dir=str(tmp_path / "evidence"))
    return lab.run_playbook(str(REPO / playbook), extra_vars=variables,
                            inventory=REPO / "extensions/eda/inventory.yml", expect_rc=expect_rc)


def test_malformed_event_fields_change_nothing(demo, tmp_path):
    mark = demo.mark()
    result = run_event_playbook(demo, "extensions/eda/playbooks/isolate_from_event.yml",
                                {"instance_id": "i-0abc; rm -rf /", "region": "us-east-1", "account_id": ADMIN,
                                 "incident_id": "x"}, tmp_path, expect_rc=(2,))
    assert result["tasks"]["Event | check the finding's instance, region and account"]["localhost"]["failed"]
    assert demo.journal(since=mark) == []


# -- AWX --------------------------------------------------------------------------------------------
def argument_spec_options(role, entry_point="main"):
    """The variables a role accepts: its argument_specs options, and `incident_id` where the role runs
    roles/batches, whose batches_incident_id defaults to it (as its own argument_specs say)."""
    specs = yaml.safe_load((REPO / "roles" / role / "meta/argument_specs.yml").read_text())
    options = dict(specs["argument_specs"][entry_point].get("options") or {})
    batches = yaml.safe_load((REPO / "roles/batches/meta/argument_specs.yml").read_text())["argument_specs"]["main"]
    uses_batches = "cloudsec.guardduty.batches" in "".join(p.read_text() for p in (REPO / "roles" / role / "tasks").glob("*.yml"))
    if uses_batches and "C(incident_id)" in json.dumps(batches["options"]["batches_incident_id"]):
        options.setdefault("incident_id", {"type": "str"})
    return options


def awx_tasks():
    return [task for play in yaml.safe_load(AWX_CONFIGURE.read_text()) for task in play.get("tasks", [])]


def awx_job_templates():
    """{name: job_template arguments} of the templates with a survey, each with the role its playbook runs."""
    templates = {}
    for task in awx_tasks():
        args = task.get("awx.awx.job_template")
        if args and "survey_spec" in args:
            text = (REPO / args["playbook"]).read_text()
            roles = set(re.findall(r"cloudsec\.guardduty\.(isolate|scan|release|eradicate)\b", text))
            assert len(roles) == 1, f"{args['playbook']} runs one of the roles: {roles}"
            templates[args["name"]] = dict(args, role=roles.pop())
    return templates


def test_awx_configure_names_the_playbooks_and_the_inventory_source():
    plays = yaml.safe_load(AWX_CONFIGURE.read_text())
    tasks = [t for play in plays for t in play.get("tasks", [])]
    source = next(t["awx.awx.inventory_source"] for t in tasks if "awx.awx.inventory_source" in t)
    assert (REPO / source["source_path"]).is_file()
    assert yaml.safe_load((REPO / source["source_path"]).read_text())["plugin"] == "cloudsec.guardduty.guardduty"
    for template in awx_job_templates().values():
        assert (REPO / template["playbook"]).is_file(), template["playbook"]


@pytest.mark.parametrize("role", ["isolate", "scan", "release", "eradicate"])
def test_awx_survey_variables_are_role_arguments(role):
    templates = [t for t in awx_job_templates().values() if t.get("role") == role]
    assert templates, f"no AWX job template runs the {role} role"
    options = argument_spec_options(role)
    for template in templates:
        spec = template["survey_spec"]
        questions = spec["spec"]
        assert template["survey_enabled"] is True and questions
        for question in questions:
            variable = question["variable"]
            assert variable in options, f"{template['name']}: survey variable {variable} is not in roles/{role}'s argument_specs"
            spec_type = options[variable].get("type", "str")
            allowed = {"bool": {"multiplechoice"}, "int": {"integer"}, "float": {"float"},
                       "str": {"text", "multiplechoice", "textarea"}, "raw": {"text", "textarea"}, "path": {"text"},
                       "list": {"multiselect", "textarea"}}[spec_type]
            assert question["type"] in allowed, f"{template['name']}: {variable} ({spec_type}) asked as {question['type']}"
            if spec_type == "bool":
                assert sorted(question["choices"]) == ["false", "true"]
            if "choices" in options[variable] and question["type"] == "multiplechoice":
                assert set(question["choices"]) <= {str(c) for c in options[variable]["choices"]}


@pytest.mark.parametrize("role", ["release", "eradicate"])
def test_awx_destructive_templates_ask_for_the_roles_confirmation(role):
    """The confirmation is the role's own guard (<role>_confirm), asked and required by the survey."""
    options = argument_spec_options(role)
    confirm = f"{role}_confirm"
    assert confirm in options
    templates = [t for t in awx_job_templates().values() if t["role"] == role]
    workflows = [t["awx.awx.workflow_job_template"] for t in awx_tasks() if "awx.awx.workflow_job_template" in t]
    for spec in [t["survey_spec"] for t in templates] + [w["survey_spec"] for w in workflows if role == "eradicate"]:
        questions = [q for q in spec["spec"] if q["variable"] == confirm]
        assert questions and questions[0]["required"] is True and "default" not in questions[0]


def test_awx_isolate_playbook_takes_survey_strings_and_publishes_artifacts(demo, tmp_path):
    """The AWX isolate template's playbook, with answers as an AWX survey passes them ("true"/"false" strings)."""
    web = demo.instance("web-1")
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"compromised": {"hosts": {"web-1": {
        "instance_id": web["id"], "region": web["region"], "account_id": web["account"]}}}}))
    answers = {"incident_id": "INC-AWX-1", "isolate_snapshots": "false", "isolate_evidence": "false",
               "isolate_detach": "false", "isolate_network": "true", "isolate_public_ip": "false",
               "isolate_credentials": "false", "isolate_subnet_containment": "false", "isolate_scan": "false",
               "isolate_scan_wait": "false", "isolate_triage": "false", "isolate_archive_findings": "false"}
    template = awx_job_templates()["GuardDuty - isolate"]
    assert set(answers) == {q["variable"] for q in template["survey_spec"]["spec"]}
    mark = demo.mark()
    result = demo.run_playbook(str(REPO / template["playbook"]), inventory=inventory,
                               extra_vars=dict(answers, isolate_report_dir=str(tmp_path / "reports")))
    assert set(map(tuple, instance_groups(demo, "web-1").values())) == {("guardduty-isolation",)}
    actions = {e["action"] for e in demo.journal(since=mark)}
    assert not actions & {"CreateSnapshot", "CreateSnapshots", "DisassociateAddress", "StartMalwareScan",
                          "DisassociateIamInstanceProfile", "DetachInstances"}
    stats = result["tasks"]["Artifacts | incident id and report"]["web-1"]["ansible_stats"]
    assert stats["data"]["incident_id"] == "INC-AWX-1"
    assert stats["data"]["guardduty_isolate_report"]["files"]


# -- execution environment --------------------------------------------------------------------------
def test_execution_environment_matches_the_collection():
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    ee = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    tarball = f"{galaxy['namespace']}-{galaxy['name']}-{galaxy['version']}.tar.gz"
    assert [f["src"] for f in ee["additional_build_files"]] == [tarball]
    collections = {c["name"]: c for c in ee["dependencies"]["galaxy"]["collections"]}
    assert collections[f"collections/{tarball}"]["type"] == "file"
    assert collections["amazon.aws"]["version"] == galaxy["dependencies"]["amazon.aws"]
    # The EE pins boto3/botocore as the tests run them (requirements.txt), within the collection's own floor.
    pins = dict(re.findall(r"^(boto3|botocore)==(\S+)", (REPO / "requirements.txt").read_text(), re.M))
    assert sorted(ee["dependencies"]["python"]) == sorted(f"{name}=={version}" for name, version in pins.items())
    # ansible-builder reads the collection's requirements from meta/execution-environment.yml, which the
    # built collection must contain (not in build_ignore), and not the development requirements.txt.
    meta = yaml.safe_load((REPO / "meta/execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "meta/ee-requirements.txt"}
    floors = dict(re.findall(r"^(boto3|botocore)>=(\S+)", (REPO / "meta/ee-requirements.txt").read_text(), re.M))
    assert set(floors) == set(pins)
    assert not any(pattern.startswith("meta") for pattern in galaxy.get("build_ignore", []))
