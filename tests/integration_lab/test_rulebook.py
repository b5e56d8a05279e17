"""The real ansible-rulebook (requirements.txt, Java 17) on the lab, end to end, as docs/eda.md runs it.

One rulebook process per scenario (its JVM takes seconds to start), the scenario's events sent at
once, then the assertions on AWS state, the lab's journal, the reports and the rulebook's output:

- SQS (extensions/eda/rulebooks/guardduty_isolate.yml, source cloudsec.guardduty.sqs, its batches): GuardDuty's
  EventBridge events on the lab's queue. A burst of five findings naming app-1 (one of them delivered
  twice) is one batch naming app-1 once, and starts one containment: every ENI of app-1 (three, in two VPCs) on the isolation group, each ENI modified twice
  (conversion, isolation), one playbook run, one report. A low-severity finding and a port probe
  naming bastion-1 change nothing. Every message is deleted once taken.
- Poller (guardduty_poll_isolate.yml, source cloudsec.guardduty.guardduty_findings): findings the lab's
  GuardDuty reports while it runs. A high finding on worker-1, in the member account, isolates it
  there; a medium one on worker-2 scans it and changes nothing else. Restarted on the same state
  file, it emits neither finding again.
"""

import json

import pytest

from tests.lab.rulebook import (RULEBOOKS, Rulebook, deleted_receipts, eventbridge_event, finding_wire,
                                instance_enis_groups, isolated)

ADMIN = "123456789012"
MEMBER = "111122223333"
REGION = "us-east-1"
QUEUE = "guardduty-findings"


def lab_finding(lab, name, finding_type):
    """The scenario's finding of that type on that instance (GetFindings' python form)."""
    info = lab.instance(name)
    held = lab._call("GET", f"/_lab/guardduty?account={info['account']}&region={info['region']}")["findings"]
    return next(f for f in held if f["Type"] == finding_type
                and (f["Resource"].get("InstanceDetails") or {}).get("InstanceId") == info["id"])


def detect(lab, name, finding_type, severity, action=None):
    info = lab.instance(name)
    spec = {"type": finding_type, "severity": severity, "instance_id": info["id"]}
    if action:
        spec["action"] = action
    return lab.detect_finding(info["account"], info["region"], spec)


def writes_naming(entries, ids):
    """Successful write calls whose parameters name one of the ids (the queue's messages aside: they carry
    the findings)."""
    return [e for e in entries if not e["action"].startswith(("Describe", "Get", "List")) and e["outcome"] == "ok"
            and e["service"] != "sqs"
            and any(i in json.dumps(e["params"]) for i in ids)]


def reports(home):
    root = home / "guardduty-reports"
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


# -- SQS ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sqs_scenario(lab, tmp_path_factory):
    lab.reset("demo")
    home = tmp_path_factory.mktemp("rulebook-sqs")
    sqs = lab.client("sqs", ADMIN, REGION)
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
    app, bastion = lab.instance("app-1"), lab.instance("bastion-1")
    before = {"bastion-1": instance_enis_groups(lab, "bastion-1")}
    # the burst: the scenario's high finding on app-1 (three ENIs, two VPCs), four more GuardDuty reports on it, and the first
    # one delivered twice (EventBridge delivers at least once)
    burst = [lab_finding(lab, "app-1", "CryptoCurrency:EC2/BitcoinTool.B!DNS")["Id"]]
    for finding_type in ("Backdoor:EC2/C&CActivity.B!DNS", "CryptoCurrency:EC2/BitcoinTool.B",
                         "Trojan:EC2/DNSDataExfiltration", "UnauthorizedAccess:EC2/SSHBruteForce"):
        burst.append(detect(lab, "app-1", finding_type, 8.0)["Id"])
    ignored = [lab_finding(lab, "bastion-1", "UnauthorizedAccess:EC2/RDPBruteForce")["Id"],   # low (2.0)
               detect(lab, "bastion-1", "Recon:EC2/PortProbeUnprotectedPort", 5.0,
                      {"type": "PORT_PROBE", "remote_ip": "198.51.100.77", "local_port": 3389})["Id"]]
    events = [eventbridge_event(finding_wire(lab, i, ADMIN, REGION), ADMIN) for i in ignored + burst + burst[:1]]

    rulebook = Rulebook(lab, RULEBOOKS / "guardduty_isolate.yml", home,
                        {"GUARDDUTY_QUEUE_NAME": QUEUE, "GUARDDUTY_QUEUE_REGION": REGION}).start()
    try:
        rulebook.wait_for(lambda: lab.journal(action="GetQueueUrl"), what="the source's GetQueueUrl")
        mark = lab.mark()
        for start in range(0, len(events), 10):
            sqs.send_message_batch(QueueUrl=queue_url, Entries=[
                {"Id": str(n), "MessageBody": json.dumps(event)} for n, event in enumerate(events[start:start + 10])])
        rulebook.wait_for(lambda: isolated(lab, "app-1"), timeout=300, what="app-1 isolated")
        rulebook.wait_for(lambda: "PLAY RECAP" in rulebook.output(), timeout=300, what="the isolate run's end")
        rulebook.wait_for(lambda: len(deleted_receipts(lab, mark)) >= len(events), timeout=120,
                          what="every message deleted")
        yield {"lab": lab, "home": home, "rulebook": rulebook, "mark": mark, "events": events, "burst": burst,
               "ignored": ignored, "before": before, "app": app, "bastion": bastion, "queue_url": queue_url}
    finally:
        rulebook.stop()


def test_sqs_burst_for_one_instance_isolates_every_eni_once(sqs_scenario):
    lab, app = sqs_scenario["lab"], sqs_scenario["app"]
    groups = instance_enis_groups(lab, "app-1")
    assert len(groups) == 3 and all(names == ["guardduty-isolation"] for names in groups.values())
    # one containment: each ENI moved twice (the conversion group, then the isolation group), not once per finding
    modified = [e for e in lab.journal(since=sqs_scenario["mark"], action="ModifyNetworkInterfaceAttribute")
                if e["outcome"] == "ok"]
    per_eni = {eni: sum(eni in json.dumps(e["params"]) for e in modified) for eni in groups}
    assert per_eni == {eni: 2 for eni in groups}
    # one playbook run, its incident the first finding of the burst (the rule's throttle kept the rest)
    assert len(sqs_scenario["rulebook"].playbook_runs()) == 1
    assert reports(sqs_scenario["home"]) == [sqs_scenario["burst"][0]]
    report = json.loads((sqs_scenario["home"] / "guardduty-reports" / sqs_scenario["burst"][0] / "report.json").read_text())
    assert app["id"] in json.dumps(report)


def test_sqs_low_severity_and_port_probe_change_nothing(sqs_scenario):
    lab, bastion = sqs_scenario["lab"], sqs_scenario["bastion"]
    assert instance_enis_groups(lab, "bastion-1") == sqs_scenario["before"]["bastion-1"]
    enis = list(sqs_scenario["before"]["bastion-1"])
    assert writes_naming(lab.journal(since=sqs_scenario["mark"]), [bastion["id"], *enis]) == []
    assert not set(sqs_scenario["ignored"]) & set(reports(sqs_scenario["home"]))
    # the engine saw them (printed) and no rule but the ignore rule acted
    output = sqs_scenario["rulebook"].output()
    assert all(finding_id in output for finding_id in sqs_scenario["ignored"])


def test_sqs_every_message_deleted_after_it_was_received(sqs_scenario):
    lab = sqs_scenario["lab"]
    entries = lab.journal(since=sqs_scenario["mark"], service="sqs")
    deleted = deleted_receipts(lab, sqs_scenario["mark"])
    assert len(deleted) == len(set(deleted)) == len(sqs_scenario["events"])
    first_receive = min(e["seq"] for e in entries if e["action"] == "ReceiveMessage")
    assert all(e["seq"] > first_receive for e in entries if e["action"].startswith("DeleteMessage"))
    attributes = lab.client("sqs", ADMIN, REGION).get_queue_attributes(
        QueueUrl=sqs_scenario["queue_url"], AttributeNames=["ApproximateNumberOfMessages",
                                                            "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


# -- the GuardDuty poller -------------------------------------------------------------------------
def poll_rulebook(lab, home, state_file):
    return Rulebook(lab, RULEBOOKS / "guardduty_poll_isolate.yml", home, {
        "GUARDDUTY_REGIONS": REGION, "GUARDDUTY_STATE_FILE": str(state_file), "GUARDDUTY_POLL_INTERVAL": "1",
        # the scenario's own findings predate the run: only what GuardDuty reports from now on
        "GUARDDUTY_UPDATED_SINCE": "0s"}).start()


@pytest.fixture(scope="module")
def poller_scenario(lab, tmp_path_factory):
    lab.reset("demo")
    home = tmp_path_factory.mktemp("rulebook-poller")
    state_file = home / "state" / "guardduty_findings.json"
    worker2_before = instance_enis_groups(lab, "worker-2")
    rulebook = poll_rulebook(lab, home, state_file)
    try:
        rulebook.wait_for(lambda: lab.journal(action="ListFindings"), what="the source's first poll")
        mark = lab.mark()
        high = detect(lab, "worker-1", "Backdoor:EC2/C&CActivity.B", 8.0,
                      {"type": "NETWORK_CONNECTION", "direction": "OUTBOUND", "remote_ip": "203.0.113.9",
                       "remote_port": 443, "local_port": 40000, "protocol": "TCP"})
        medium = detect(lab, "worker-2", "UnauthorizedAccess:EC2/SSHBruteForce", 5.0)
        low = detect(lab, "worker-2", "UnauthorizedAccess:EC2/SSHBruteForce", 2.0)
        rulebook.wait_for(lambda: isolated(lab, "worker-1"), timeout=300, what="worker-1 isolated")
        rulebook.wait_for(lambda: rulebook.output().count("PLAY RECAP") == 2, timeout=300, what="both runs' end")
        first_output = rulebook.output()
    finally:
        rulebook.stop()
    # restarted on the same state file: nothing is emitted again
    restart_mark = lab.mark()
    again = poll_rulebook(lab, home / "restart", state_file)
    try:
        again.wait_for(lambda: len(lab.journal(since=restart_mark, action="ListFindings")) >= 3, timeout=120,
                       what="three polls after the restart")
        restart_output = again.output()
    finally:
        again.stop()
    yield {"lab": lab, "home": home, "mark": mark, "high": high, "medium": medium, "low": low,
           "worker2_before": worker2_before, "first_output": first_output, "restart_output": restart_output,
           "state_file": state_file}


def test_poller_high_finding_isolates_the_member_instance(poller_scenario):
    lab = poller_scenario["lab"]
    groups = instance_enis_groups(lab, "worker-1")
    assert groups and all(names == ["guardduty-isolation"] for names in groups.values())
    # in the member account, through its responder role; nothing written in the administrator's
    entries = lab.journal(since=poller_scenario["mark"], service="ec2")
    writes = [e for e in entries if e["action"].startswith("Modify") and e["outcome"] == "ok"]
    assert writes and {e["account"] for e in writes} == {MEMBER}


def test_poller_medium_finding_scans_and_changes_nothing_else(poller_scenario):
    lab = poller_scenario["lab"]
    worker2 = lab.instance("worker-2")
    scans = [e for e in lab.journal(since=poller_scenario["mark"], action="StartMalwareScan")
             if worker2["id"] in json.dumps(e["params"])]
    assert len(scans) == 1
    assert instance_enis_groups(lab, "worker-2") == poller_scenario["worker2_before"]
    ec2_writes = [e for e in writes_naming(lab.journal(since=poller_scenario["mark"], service="ec2"),
                                           [worker2["id"], *poller_scenario["worker2_before"]])]
    assert ec2_writes == []
    # the low finding never reached the rules (min_severity 4 in the source), nor ran anything
    assert poller_scenario["low"]["Id"] not in poller_scenario["first_output"]
    # the isolate run wrote the high finding's report, the scan run the medium's (its verdict), nothing else
    assert reports(poller_scenario["home"]) == sorted([poller_scenario["high"]["Id"], poller_scenario["medium"]["Id"]])
    scan_runs = list((poller_scenario["home"] / "guardduty-reports" / poller_scenario["medium"]["Id"] / "runs").iterdir())
    assert [p.name.endswith("-scan") for p in scan_runs] == [True]


def test_poller_restart_emits_nothing_again(poller_scenario):
    assert poller_scenario["first_output"].count("[received event]") == 2
    assert "[received event]" not in poller_scenario["restart_output"]
    assert "PLAY [" not in poller_scenario["restart_output"]
    assert poller_scenario["state_file"].stat().st_mode & 0o777 == 0o600
