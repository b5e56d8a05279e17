"""Seconds from GuardDuty findings on the queue to their instances contained, through the real ansible-rulebook
(extensions/eda/rulebooks/guardduty_isolate.yml, source cloudsec.guardduty.sqs with its 2 s batch window) on
the lab (issue 18 item 3; GuardDuty's own delay to EventBridge aside). The rulebook is started and idle on its
long poll first (its JVM start is not counted), then:

- one finding (app-1 of the demo lab, 3 ENIs in 2 VPCs), a few rounds: the clock runs from SendMessage to the
  instance's last ENI onto the isolation group, and the lab's journal splits it: the source (queue -> batch
  handed to the engine, the batch window's quiet second included), the run's start (ansible-rulebook's action,
  ansible-runner, ansible-playbook and the event's play, up to the run's first AWS call), the evidence stages
  the isolate role runs before containment (docs/roles/isolate.md: evidence first), and the containment;
- a burst: 100 findings for 50 instances (two each, several types, 2 accounts x 2 regions, 1 or 2 ENIs each;
  tests/lab/rulebook.py burst_findings) sent at once: time until every ENI is on the isolation group, and
  the number of playbook runs.

The machine is shared: the load average is printed with each figure. Printed, and written to
.build/bench/rulebook.json; never asserted.

  .venv/bin/python -m tests.bench.bench_rulebook [--rounds N] [--no-burst]
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.rulebook import (BURST_SCENARIO, RULEBOOKS, Rulebook, burst_findings, eventbridge_event, finding_wire,
                                isolated, send_events)

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN, REGION, QUEUE = "123456789012", "us-east-1", "guardduty-findings"
TARGET_S, BURST_TARGET_S = 10.0, 30.0
VARIABLES = {"GUARDDUTY_QUEUE_NAME": QUEUE, "GUARDDUTY_QUEUE_REGION": REGION}


def load():
    return round(os.getloadavg()[0], 1)


def start_rulebook(lab, home):
    rulebook = Rulebook(lab, RULEBOOKS / "guardduty_isolate.yml", home, VARIABLES).start()
    rulebook.wait_for(lambda: lab.journal(action="GetQueueUrl"), what="the source's GetQueueUrl")
    time.sleep(2)  # the source is on its long poll
    return rulebook


def modifies(lab, mark):
    return [e for e in lab.journal(since=mark, action="ModifyNetworkInterfaceAttribute") if e["outcome"] == "ok"]


def one_round(lab, home):
    lab.reset("demo")
    sqs = lab.client("sqs", ADMIN, REGION)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    app = lab.instance("app-1")
    held = lab._call("GET", f"/_lab/guardduty?account={ADMIN}&region={REGION}")["findings"]
    finding = next(f for f in held if (f["Resource"].get("InstanceDetails") or {}).get("InstanceId") == app["id"])
    event = eventbridge_event(finding_wire(lab, finding["Id"], ADMIN, REGION), ADMIN)
    rulebook = start_rulebook(lab, home)
    try:
        mark, before = lab.mark(), load()
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        # each ENI twice (conversion, isolation): the journal says when the last one landed
        rulebook.wait_for(lambda: len(modifies(lab, mark)) >= 2 * len(app["enis"]), timeout=600,
                          what="app-1 contained", poll=0.05)
        assert isolated(lab, "app-1"), "app-1's ENIs are not all on the isolation group"
        entries = lab.journal(since=mark)
    finally:
        rulebook.stop()
    sent = next(e["time"] for e in entries if e["action"] == "SendMessage")
    handed = next(e["started"] for e in entries if e["action"] == "DeleteMessageBatch")
    first_call = next(e["started"] for e in entries if e["service"] != "sqs")
    changes = [e for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute" and e["outcome"] == "ok"]
    return {"seconds": changes[-1]["time"] - sent, "source_s": handed - sent, "run_start_s": first_call - handed,
            "evidence_s": changes[0]["started"] - first_call, "containment_s": changes[-1]["time"] - changes[0]["started"],
            "load": round((before + load()) / 2, 1)}


def burst(lab, home):
    lab.reset(BURST_SCENARIO, enis=2)
    sqs = lab.client("sqs", ADMIN, REGION)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    findings, events = burst_findings(lab)
    enis = sum(len(lab.instance(name)["enis"]) for name in findings)
    rulebook = start_rulebook(lab, home)
    try:
        mark, before = lab.mark(), load()
        started = time.time()
        send_events(sqs, url, events)
        rulebook.wait_for(lambda: len(modifies(lab, mark)) >= 2 * enis, timeout=900, what="every ENI contained", poll=0.2)
        contained = modifies(lab, mark)[-1]["time"] - started
        during = load()
        not_isolated = [name for name in findings if not isolated(lab, name)]
        rulebook.wait_for(lambda: rulebook.output().count("PLAY RECAP") >= len(rulebook.playbook_runs()), timeout=600,
                          what="every run's end")
        runs = len(rulebook.playbook_runs())
    finally:
        rulebook.stop()
    return {"findings": len(events), "instances": len(findings), "enis": enis, "seconds": round(contained, 2),
            "playbook_runs": runs, "not_isolated": not_isolated, "load": round((before + during) / 2, 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-burst", action="store_true", help="the single-finding rounds only")
    args = parser.parse_args()
    endpoint, process = start_lab("empty")
    lab = LabClient(endpoint, process)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rounds = [one_round(lab, pathlib.Path(tmp) / f"round-{n}") for n in range(args.rounds)]
            burst_result = None if args.no_burst else burst(lab, pathlib.Path(tmp) / "burst")
    finally:
        stop_lab(process)
    median = {k: round(statistics.median(r[k] for r in rounds), 2) for k in rounds[0]}
    result = {"single": {"rounds": [{k: round(v, 2) for k, v in r.items()} for r in rounds], "median": median,
                         "target_s": TARGET_S},
              "burst": burst_result and dict(burst_result, target_s=BURST_TARGET_S)}
    print(f"one finding on the queue -> its instance contained (ansible-rulebook, app-1, 3 ENIs): median "
          f"{median['seconds']} s over {args.rounds} rounds {[round(r['seconds'], 2) for r in rounds]} "
          f"(target < {TARGET_S} s; load average {[r['load'] for r in rounds]})")
    print(f"   where the seconds go (medians): source {median['source_s']} s (batch window's quiet second "
          f"included), run start {median['run_start_s']} s, evidence stages {median['evidence_s']} s, "
          f"containment {median['containment_s']} s")
    if burst_result:
        print(f"burst: {burst_result['findings']} findings for {burst_result['instances']} instances "
              f"({burst_result['enis']} ENIs, 2 accounts x 2 regions) contained in {burst_result['seconds']} s "
              f"with {burst_result['playbook_runs']} playbook run(s) (target < {BURST_TARGET_S} s; load average "
              f"{burst_result['load']}; not isolated: {burst_result['not_isolated'] or 'none'})")
    out = REPO / ".build/bench/rulebook.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
