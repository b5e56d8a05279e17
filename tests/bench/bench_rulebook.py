"""Seconds from a GuardDuty finding on the queue to its instance contained, through the real
ansible-rulebook (extensions/eda/rulebooks/guardduty_isolate.yml, source cloudsec.guardduty.sqs) on
the lab: the rulebook is started and idle on its long poll first (its JVM start is not counted), then
the finding's EventBridge event is sent and the clock runs until the instance's last ENI is on the
isolation group (issue 18 item 3; GuardDuty's own delay to EventBridge aside). Printed, and written to
.build/bench/rulebook.json; never asserted.

  .venv/bin/python -m tests.bench.bench_rulebook [--rounds N]
"""

import argparse
import json
import pathlib
import statistics
import tempfile
import time

from tests.lab.pytest_plugin import LabClient, start_lab, stop_lab
from tests.lab.rulebook import RULEBOOKS, Rulebook, eventbridge_event, finding_wire, isolated, require_java

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN, REGION, QUEUE = "123456789012", "us-east-1", "guardduty-findings"
TARGET_S = 10.0


def one_round(lab, home):
    lab.reset("demo")
    sqs = lab.client("sqs", ADMIN, REGION)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    app = lab.instance("app-1")
    held = lab._call("GET", f"/_lab/guardduty?account={ADMIN}&region={REGION}")["findings"]
    finding = next(f for f in held if (f["Resource"].get("InstanceDetails") or {}).get("InstanceId") == app["id"])
    event = eventbridge_event(finding_wire(lab, finding["Id"], ADMIN, REGION), ADMIN)
    rulebook = Rulebook(lab, RULEBOOKS / "guardduty_isolate.yml", home,
                        {"GUARDDUTY_QUEUE_NAME": QUEUE, "GUARDDUTY_QUEUE_REGION": REGION}).start()
    try:
        rulebook.wait_for(lambda: lab.journal(action="GetQueueUrl"), what="the source's GetQueueUrl")
        time.sleep(2)  # the source is on its long poll
        started = time.monotonic()
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(event))
        rulebook.wait_for(lambda: isolated(lab, "app-1"), timeout=600, what="app-1 isolated", poll=0.05)
        return time.monotonic() - started
    finally:
        rulebook.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_java()
    endpoint, process = start_lab("empty")
    lab = LabClient(endpoint, process)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            seconds = [one_round(lab, pathlib.Path(tmp) / f"round-{n}") for n in range(args.rounds)]
    finally:
        stop_lab(process)
    result = {"rounds": [round(s, 2) for s in seconds], "median_s": round(statistics.median(seconds), 2),
              "target_s": TARGET_S}
    print(f"finding on the queue -> instance contained (ansible-rulebook, 1 instance, 3 ENIs): "
          f"median {result['median_s']} s over {args.rounds} rounds {result['rounds']} (target < {TARGET_S} s)")
    out = REPO / ".build/bench/rulebook.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
