"""ansible-rulebook against the lab: the real engine (pinned in requirements.txt, Java 17 for Drools)
running one of extensions/eda/rulebooks/ with the collection's event sources, for the end-to-end
tests (tests/integration_lab/test_rulebook.py) and the benchmark (tests/bench/bench_rulebook.py).

The command is the one docs/eda.md shows; the process gets the lab's endpoint and credentials as
environment variables (AWS_URL, AWS_ACCESS_KEY_ID...), as a user's shell would, and a HOME of its own
so the playbooks' reports and evidence (~/guardduty-reports, ~/guardduty-evidence) land there.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
RULEBOOKS = REPO / "extensions/eda/rulebooks"
INVENTORY = "extensions/eda/inventory.yml"
JAVA_HELP = ("ansible-rulebook needs a Java 17 (or newer) runtime for its Drools engine, and none was found "
             "(no `java` on PATH, nor in JAVA_HOME). On Debian or Ubuntu: apt-get install openjdk-17-jre-headless")


class JavaMissing(RuntimeError):
    pass


def require_java():
    """The java ansible-rulebook will use, version 17 or newer; JavaMissing says how to install it."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(pathlib.Path(os.environ["JAVA_HOME"]) / "bin/java")
    if shutil.which("java"):
        candidates.append(pathlib.Path(shutil.which("java")))
    for java in candidates:
        if not java.is_file():
            continue
        answer = subprocess.run([str(java), "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)', answer.stderr + answer.stdout)
        if match and int(match.group(1)) >= 17:
            return str(java)
        raise JavaMissing(f"{java} is Java {match.group(1) if match else '?'}; " + JAVA_HELP)
    raise JavaMissing(JAVA_HELP)


def finding_wire(lab, finding_id, account, region):
    """One finding as GuardDuty's API puts it on the wire (camelCase JSON): what GuardDuty sends to EventBridge."""
    guardduty = lab.client("guardduty", account, region)
    wire = []
    guardduty.meta.events.register("after-call.guardduty.GetFindings",
                                   lambda http_response, **kwargs: wire.append(json.loads(http_response.content)))
    detector_id = guardduty.list_detectors()["DetectorIds"][0]
    guardduty.get_findings(DetectorId=detector_id, FindingIds=[finding_id])
    return wire[0]["findings"][0]


def wire_findings(lab, account, region):
    """{finding id: finding as GuardDuty puts it on the wire} of an account's detector in a region."""
    guardduty = lab.client("guardduty", account, region)
    wire = []
    guardduty.meta.events.register("after-call.guardduty.GetFindings",
                                   lambda http_response, **kwargs: wire.extend(json.loads(http_response.content)["findings"]))
    detector_id = guardduty.list_detectors()["DetectorIds"][0]
    pages = guardduty.get_paginator("list_findings").paginate(DetectorId=detector_id)
    finding_ids = [i for page in pages for i in page["FindingIds"]]
    for start in range(0, len(finding_ids), 50):
        guardduty.get_findings(DetectorId=detector_id, FindingIds=finding_ids[start:start + 50])
    return {f["id"]: f for f in wire}


BURST_SCENARIO = "generated:100:2:2"     # tests/lab/generator.py: 52 compromised instances, 2 accounts x 2 regions
BURST_EXTRA = {"type": "CryptoCurrency:EC2/BitcoinTool.B", "severity": 8.0}


def burst_findings(lab, instances=50):
    """The burst of issue 18 on a freshly reset BURST_SCENARIO lab: two GuardDuty findings for each of `instances`
    compromised instances over 2 accounts x 2 regions, in GuardDuty's wire form. Most instances carry the generated
    pair (Backdoor C&C at 8.0, SSH brute force at 5.0); those with one finding get a CryptoCurrency one reported now.

    Returns ({instance name: [finding, finding]}, the EventBridge events in sending order: every instance's first
    finding, then every second one).
    """
    chosen = {}
    by_source = {}
    for name, info in sorted(lab.resources["instances"].items()):
        if name.startswith("compromised"):
            by_source.setdefault((info["account"], info["region"]), []).append(name)
    wire = {source: wire_findings(lab, *source) for source in by_source}
    for source, names in sorted(by_source.items()):
        for name in names:
            instance_id = lab.resources["instances"][name]["id"]
            own = [f for f in wire[source].values()
                   if (f["resource"].get("instanceDetails") or {}).get("instanceId") == instance_id]
            chosen[name] = sorted(own, key=lambda f: -f["severity"])
    pairs = [n for n, f in chosen.items() if len(f) == 2]
    singles = [n for n, f in chosen.items() if len(f) == 1]
    names = (pairs + singles)[:instances]
    for name in names:
        if len(chosen[name]) == 1:
            info = lab.resources["instances"][name]
            extra = lab.detect_finding(info["account"], info["region"], dict(BURST_EXTRA, instance_id=info["id"]))
            chosen[name].append(wire_findings(lab, info["account"], info["region"])[extra["Id"]])
    burst = {name: chosen[name] for name in names}
    admin = lab.resources["administrator"]
    events = [eventbridge_event(findings[k], admin) for k in (0, 1) for findings in burst.values()]
    return burst, events


def send_events(sqs, queue_url, events):
    """Each event as one SQS message, ten per SendMessageBatch, as fast as the queue takes them."""
    for start in range(0, len(events), 10):
        sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "MessageBody": json.dumps(event)} for n, event in enumerate(events[start:start + 10])])


def deleted_receipts(lab, mark):
    """The receipt handles of the queue messages deleted since mark, one by one or ten per call."""
    out = []
    for e in lab.journal(since=mark, service="sqs"):
        if e["outcome"] == "ok" and e["action"] == "DeleteMessage":
            out.append(e["params"]["ReceiptHandle"])
        elif e["outcome"] == "ok" and e["action"] == "DeleteMessageBatch":
            out.extend(entry["ReceiptHandle"] for entry in e["params"]["Entries"])
    return out


def eventbridge_event(finding, bus_account):
    """GuardDuty's EventBridge event for a finding (the rule sends it whole: the SQS message body)."""
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "GuardDuty Finding", "source": "aws.guardduty",
            "account": bus_account, "time": finding["updatedAt"], "region": finding["region"], "resources": [],
            "detail": finding}


def instance_enis_groups(lab, name):
    """{eni id: sorted group names} of a lab instance, as EC2 describes it now."""
    info = lab.instance(name)
    ec2 = lab.client("ec2", info["account"], info["region"])
    instance = ec2.describe_instances(InstanceIds=[info["id"]])["Reservations"][0]["Instances"][0]
    return {nic["NetworkInterfaceId"]: sorted(g["GroupName"] for g in nic["Groups"])
            for nic in instance["NetworkInterfaces"]}


def isolated(lab, name, group="guardduty-isolation"):
    groups = instance_enis_groups(lab, name)
    return bool(groups) and all(names == [group] for names in groups.values())


class Rulebook:
    """One ansible-rulebook process: `start()`, then `stop()` (the whole process tree, playbooks included).

    `variables` are exported and named with -E, as docs/eda.md runs it; `log` is its output.
    """

    def __init__(self, lab, rulebook, home, variables, account=None, region="us-east-1"):
        self.lab = lab
        self.rulebook = pathlib.Path(rulebook)
        self.home = pathlib.Path(home)
        self.variables = dict(variables)
        self.account = account
        self.region = region
        self.log = self.home / "ansible-rulebook.log"
        self.process = None

    def command(self):
        rulebook = self.rulebook.relative_to(REPO) if self.rulebook.is_absolute() else self.rulebook
        return [str(BIN / "ansible-rulebook"), "-r", str(rulebook), "-i", INVENTORY,
                "-E", ",".join(sorted(self.variables)), "--print-events"]

    def environment(self):
        env = self.lab.env(self.account, self.region) if self.account else self.lab.env(region=self.region)
        env.update({k: str(v) for k, v in self.variables.items()})
        env["HOME"] = str(self.home)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"   # ansible-galaxy finds the collection's sources
        env.pop("ANSIBLE_STDOUT_CALLBACK", None)                   # ansible-runner sets its own
        return env

    def start(self):
        require_java()
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(self.command(), cwd=str(REPO), env=self.environment(), stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_for(self, condition, timeout=120, what="the condition", poll=0.2):
        """Wait until condition() is true; fail with the rulebook's log if it exits or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            if self.process.poll() is not None:
                raise AssertionError(f"ansible-rulebook exited (rc={self.process.returncode}) before {what}:\n"
                                     + self.output()[-6000:])
            time.sleep(poll)
        raise AssertionError(f"{what} did not happen within {timeout} s; ansible-rulebook's log:\n"
                             + self.output()[-6000:])

    def output(self):
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def playbook_runs(self):
        """The run_playbook actions started, in order: ansible-runner's banner of each playbook's first play
        (event_host.yml for one finding, batch_hosts.yml for a batch)."""
        return re.findall(r"^PLAY \[Take the (?:instance a GuardDuty finding names|instances of the batch) into the run\]",
                          self.output(), re.M)

    def _tree(self):
        """This process and every descendant (ansible-playbook's modules run in their own sessions)."""
        children = {}
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
        tree, todo = [], [self.process.pid]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, []))
        return tree

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        for pid in self._tree():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=30)
