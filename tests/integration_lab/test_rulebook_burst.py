"""A burst of GuardDuty findings through the real ansible-rulebook (guardduty_isolate.yml, source
cloudsec.guardduty.sqs with batch_window) on the lab: 100 findings for 50 instances (two each: a Backdoor C&C
or a CryptoCurrency finding at 8.0, and an SSH brute force at 5.0 or a second isolating one), over 2 accounts x
2 regions (tests/lab/generator.py, `generated:100:2:2`, instances with 1 or 2 ENIs).

The first wave (every instance's first finding, and the second one of half of them) is sent at once; the
second wave (the other half's second findings) once the first run is containing: those instances are being
contained by a running playbook, and no second run may start for them. Asserted on AWS state and the lab's
journal: every ENI on the isolation group, each moved exactly once to it (twice in all: the conversion group,
then the isolation group), each instance's evidence taken once, fewer playbook runs than findings, every
message deleted once its batch was taken.
"""

import json

import pytest

from tests.lab.rulebook import (BURST_SCENARIO, RULEBOOKS, Rulebook, burst_findings, deleted_receipts,
                                instance_enis_groups, isolated, send_events)

QUEUE, QUEUE_REGION = "guardduty-findings", "us-east-1"


def isolation_group_ids(lab, accounts_regions):
    ids = set()
    for account, region in accounts_regions:
        groups = lab.client("ec2", account, region).describe_security_groups(
            Filters=[{"Name": "group-name", "Values": ["guardduty-isolation"]}])["SecurityGroups"]
        ids.update(g["GroupId"] for g in groups)
    return ids


@pytest.fixture(scope="module")
def burst(lab, tmp_path_factory):
    lab.reset(BURST_SCENARIO, enis=2)
    home = tmp_path_factory.mktemp("rulebook-burst")
    admin = lab.resources["administrator"]
    sqs = lab.client("sqs", admin, QUEUE_REGION)
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
    findings, events = burst_findings(lab)
    names = list(findings)
    late = {f["id"] for name in names[len(names) // 2:] for f in findings[name][1:]}
    first_wave = [e for e in events if e["detail"]["id"] not in late]
    second_wave = [e for e in events if e["detail"]["id"] in late]
    rulebook = Rulebook(lab, RULEBOOKS / "guardduty_isolate.yml", home,
                        {"GUARDDUTY_QUEUE_NAME": QUEUE, "GUARDDUTY_QUEUE_REGION": QUEUE_REGION}, account=admin).start()
    try:
        rulebook.wait_for(lambda: lab.journal(action="GetQueueUrl"), what="the source's GetQueueUrl")
        mark = lab.mark()
        send_events(sqs, queue_url, first_wave)
        # the first run is containing (its first network change) when the rest arrives
        rulebook.wait_for(lambda: lab.journal(since=mark, action="ModifyNetworkInterfaceAttribute"), timeout=300,
                          what="the first run's containment")
        send_events(sqs, queue_url, second_wave)
        rulebook.wait_for(lambda: all(isolated(lab, name) for name in names), timeout=600, what="every instance isolated")
        rulebook.wait_for(lambda: rulebook.output().count("PLAY RECAP") >= len(rulebook.playbook_runs()),
                          timeout=300, what="every run's end")
        rulebook.wait_for(lambda: len(deleted_receipts(lab, mark)) >= len(events), timeout=120,
                          what="every message deleted")
        yield {"lab": lab, "home": home, "rulebook": rulebook, "mark": mark, "findings": findings, "events": events,
               "names": names, "queue_url": queue_url, "admin": admin}
    finally:
        rulebook.stop()


def test_burst_isolates_every_eni_of_the_fifty_instances_once(burst):
    lab, names = burst["lab"], burst["names"]
    infos = [lab.instance(name) for name in names]
    assert len(names) == 50 and len(burst["events"]) == 100
    assert {(i["account"], i["region"]) for i in infos} == {(a, r) for a in ("123456789012", "111122223333")
                                                           for r in ("us-east-1", "eu-west-1")}
    groups = {eni: names_ for name in names for eni, names_ in instance_enis_groups(lab, name).items()}
    assert len(groups) > 50 and all(g == ["guardduty-isolation"] for g in groups.values())
    isolation = isolation_group_ids(lab, {(i["account"], i["region"]) for i in infos})
    modified = [e for e in lab.journal(since=burst["mark"], action="ModifyNetworkInterfaceAttribute") if e["outcome"] == "ok"]
    per_eni = {eni: [e for e in modified if eni in json.dumps(e["params"])] for eni in groups}
    # twice in all (the conversion group, then the isolation group), onto the isolation group exactly once
    assert {eni: len(calls) for eni, calls in per_eni.items()} == {eni: 2 for eni in groups}
    onto_isolation = {eni: sum(any(g in isolation for g in json.dumps(c["params"]).split('"')) for c in calls)
                      for eni, calls in per_eni.items()}
    assert onto_isolation == {eni: 1 for eni in groups}


def test_burst_runs_fewer_playbooks_than_findings_and_none_twice_per_instance(burst):
    lab, rulebook = burst["lab"], burst["rulebook"]
    runs = rulebook.playbook_runs()
    assert 1 <= len(runs) < len(burst["events"]) // 10
    # every instance's evidence taken once (one run per instance): one CreateSnapshots, one malware scan each
    for name in burst["names"]:
        instance_id = lab.instance(name)["id"]
        snapshots = [e for e in lab.journal(since=burst["mark"], action="CreateSnapshots")
                     if e["outcome"] == "ok" and instance_id in json.dumps(e["params"])]
        scans = [e for e in lab.journal(since=burst["mark"], action="StartMalwareScan")
                 if e["outcome"] == "ok" and instance_id in json.dumps(e["params"])]
        assert (name, len(snapshots), len(scans)) == (name, 1, 1)
    # the SSH brute force findings (scan rule) went with their instance's isolation: no scan run
    assert "Scan them" not in rulebook.output() and "PLAY [Scan" not in rulebook.output()
    # the second wave named instances already handed over: the source said so, and started nothing for them
    assert "handed over for isolate" in rulebook.output()
    # every finding reached the rules, in a batch's instances or its ignored list (--print-events): none is lost
    output = rulebook.output()
    assert [f["id"] for name in burst["names"] for f in burst["findings"][name] if f["id"] not in output] == []


def test_burst_deletes_every_message_once_its_batch_was_taken(burst):
    lab = burst["lab"]
    deleted = deleted_receipts(lab, burst["mark"])
    assert len(deleted) == len(set(deleted)) == len(burst["events"])
    attributes = lab.client("sqs", burst["admin"], QUEUE_REGION).get_queue_attributes(
        QueueUrl=burst["queue_url"], AttributeNames=["ApproximateNumberOfMessages",
                                                     "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
