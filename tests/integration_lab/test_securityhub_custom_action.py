"""The Security Hub custom action path (docs/eda.md, "Contain with Ansible") against the lab.

- The EventBridge pattern (extensions/eda/eventbridge/securityhub-custom-action-pattern.json) with
  EventBridge's own TestEventPattern (the lab's, tests/lab/fixes/events_test_event_pattern.py) on a
  `Security Hub Findings - Custom Action` event carrying the lab's Security Hub findings (ASFF), shaped as
  the Security Hub User Guide documents it (source aws.securityhub, resources [the custom action ARN],
  detail.actionName, detail.actionDescription, detail.findings).
- The rulebook rule's condition, as data only: every field it compares is read from that event and holds
  the value compared; the GuardDuty rules' fields are absent from it, and its own source is not GuardDuty's.
  (Evaluating the condition with ansible-rulebook itself is the EDA test suite's job, test_event_driven.py.)
- The extra vars the rule passes, rendered from the event as ansible-rulebook renders them, run
  isolate_from_securityhub.yml: every selected finding's instance ends isolated and its findings NOTIFIED.
"""

import copy
import json
import pathlib
import re
import uuid

import jinja2
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PATTERN_FILE = REPO / "extensions/eda/eventbridge/securityhub-custom-action-pattern.json"
RULEBOOKS = [REPO / "extensions/eda/rulebooks/guardduty_isolate.yml", REPO / "extensions/eda/rulebooks/guardduty_isolate_awx.yml"]
RULE = "Contain the instances of a Security Hub custom action"
ADMIN, REGION = "123456789012", "us-east-1"
ACTION_ARN = f"arn:aws:securityhub:{REGION}:{ADMIN}:action/custom/ContainWithAnsible"


def asff_of(lab, names):
    client = lab.client("securityhub")
    out = []
    for name in names:
        inst = lab.instance(name)
        resource = f"arn:aws:ec2:{inst['region']}:{inst['account']}:instance/{inst['id']}"
        out += client.get_findings(Filters={"ResourceId": [{"Value": resource, "Comparison": "EQUALS"}],
                                            "RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}]})["Findings"]
    return out


def custom_action_event(findings, action_arn=ACTION_ARN, detail_type="Security Hub Findings - Custom Action"):
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.securityhub",
            "account": ADMIN, "time": "2026-12-05T12:00:00Z", "region": REGION, "resources": [action_arn],
            "detail": {"actionName": "Contain with Ansible", "actionDescription": "Isolate the instances (cloudsec.guardduty)",
                       "findings": findings}}


def matches(lab, event):
    return lab.client("events").test_event_pattern(EventPattern=PATTERN_FILE.read_text(), Event=json.dumps(event))["Result"]


def rule(path):
    return next(r for r in yaml.safe_load(path.read_text())[0]["rules"] if r["name"] == RULE)


def field(event, dotted):
    value = {"event": {"body": event}}
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return KeyError
        value = value[part]
    return value


def test_pattern_takes_the_custom_action_on_ec2_findings_only(demo):
    findings = asff_of(demo, ["web-1"])
    assert findings
    event = custom_action_event(findings)
    assert matches(demo, event) is True
    assert matches(demo, custom_action_event(findings, action_arn=ACTION_ARN.replace("ContainWithAnsible", "Other"))) is False
    assert matches(demo, custom_action_event(findings, detail_type="Security Hub Findings - Imported")) is False
    s3_only = copy.deepcopy(findings[:1])
    s3_only[0]["Resources"] = [{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::bucket"}]
    assert matches(demo, custom_action_event(s3_only)) is False
    assert matches(demo, custom_action_event(s3_only + findings)) is True  # one EC2 finding among the selection


def test_rule_condition_fields_are_those_of_the_event(demo):
    event = custom_action_event(asff_of(demo, ["web-1"]))
    for path in RULEBOOKS:
        condition = rule(path)["condition"]
        compared = re.findall(r'(event\.body\.[\w.]+) == "([^"]*)"', condition)
        defined = re.findall(r"(event\.body\.[\w.]+) is defined", condition)
        assert compared and defined, condition
        for dotted, value in compared:
            assert field(event, dotted) == value, (path.name, dotted)
        for dotted in defined:
            assert field(event, dotted) is not KeyError, (path.name, dotted)
        # the GuardDuty rules read detail.severity and detail.type: the custom action's event has neither,
        # so only this rule acts on it; and a GuardDuty event's source is aws.guardduty
        assert "severity" not in event["detail"] and "type" not in event["detail"]
    # every other rule needs what the custom action's event does not have: a GuardDuty finding's detail.severity
    # (the per-finding rulebooks), or the SQS source's own batch events (source cloudsec.guardduty.sqs)
    for path in RULEBOOKS:
        other = [r for r in yaml.safe_load(path.read_text())[0]["rules"] if r["name"] != RULE]
        for other_rule in other:
            compared = re.findall(r'(event\.body\.[\w.]+) == "([^"]*)"', other_rule["condition"])
            assert "event.body.detail.severity" in other_rule["condition"] or any(
                field(event, dotted) != value for dotted, value in compared), (path.name, other_rule["name"])


def rendered_extra_vars(event):
    action = rule(RULEBOOKS[0])["action"]["run_playbook"]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    sqs_event = {"body": event, "meta": {"MessageId": str(uuid.uuid4())}}
    return {k: env.from_string(v).render(event=sqs_event) for k, v in action["extra_vars"].items()}, action["name"]


def eni_groups(lab, name):
    inst = lab.instance(name)
    ec2 = lab.client("ec2", inst["account"], inst["region"])
    nics = ec2.describe_network_interfaces(NetworkInterfaceIds=inst["enis"])["NetworkInterfaces"]
    return {tuple(sorted(g["GroupName"] for g in n["Groups"])) for n in nics}


def test_the_custom_action_isolates_every_selected_instance_and_notifies_security_hub(demo, tmp_path):
    findings = asff_of(demo, ["web-1", "app-1"])
    event = custom_action_event(findings)
    extra_vars, playbook = rendered_extra_vars(event)
    assert extra_vars["incident_id"] == event["id"]
    healthy_before = eni_groups(demo, "healthy-1")
    demo.run_playbook(str(REPO / playbook), inventory=REPO / "extensions/eda/inventory.yml",
                      extra_vars=dict(extra_vars, isolate_report_dir=str(tmp_path / "reports"),
                                      isolate_evidence_dir=str(tmp_path / "evidence"), isolate_scan=False))
    for name in ("web-1", "app-1"):
        assert eni_groups(demo, name) == {("guardduty-isolation",)}, name
    assert eni_groups(demo, "healthy-1") == healthy_before
    for finding in asff_of(demo, ["web-1", "app-1"]):
        assert finding["Workflow"]["Status"] == "NOTIFIED"
        assert finding["Note"]["Text"].startswith(f"Incident {event['id']}: contained by cloudsec.guardduty.isolate")
    assert (tmp_path / "reports" / event["id"] / "report.json").is_file()


def test_findings_naming_no_instance_change_nothing(demo, tmp_path):
    findings = copy.deepcopy(asff_of(demo, ["web-1"]))
    for finding in findings:
        finding["Resources"] = [{"Type": "AwsEc2Instance", "Id": "arn:aws:ec2:us-east-1:123456789012:instance/i-0; rm -rf /"}]
    extra_vars, playbook = rendered_extra_vars(custom_action_event(findings))
    mark = demo.mark()
    out = demo.run_playbook(str(REPO / playbook), inventory=REPO / "extensions/eda/inventory.yml",
                            extra_vars=extra_vars, expect_rc=(2,))
    assert out["rc"] == 2
    assert [e for e in demo.journal(since=mark) if not e["action"].startswith(("Describe", "Get", "List"))] == []
