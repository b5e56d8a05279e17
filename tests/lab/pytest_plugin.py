"""pytest fixtures for tests that run against the lab (loaded with `-p tests.lab.pytest_plugin`).

- `lab`: a LabClient for a lab process started once per pytest worker (`python -m tests.lab`).
- `demo`: the same lab reset to the `demo` scenario for this test, journal and faults cleared.
- `lab.run_playbook(...)`: runs ansible-playbook against the lab and returns every task result.
"""

import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.config import Config

from tests.lab.scenario import DEFAULT_ACCOUNT, LAB_CREDENTIALS

REPO = pathlib.Path(__file__).resolve().parents[2]
# The collection as its modules see it (ansible_collections is a namespace package), for the tests that import its
# module_utils themselves (test_aws_call_floor, test_concurrency), whichever test file is collected first.
COLLECTIONS = REPO / ".build" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


class LabClient:
    def __init__(self, endpoint, process=None):
        self.endpoint = endpoint
        self.process = process
        self.resources = {}
        self._creds = {}
        self._mark_times = {}  # journal position -> when mark() gave it (journal's `since`)
        self.incident_store = None
        self.new_incident_store()

    def new_incident_store(self):
        """A fresh incident store (records, locks) for what the next runs do: never the user's ~."""
        if self.incident_store:
            shutil.rmtree(self.incident_store, ignore_errors=True)
        self.incident_store = tempfile.mkdtemp(prefix="lab-incident-store-")
        return self.incident_store

    # -- control ------------------------------------------------------------------------------
    def _call(self, method, path, data=None):
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(self.endpoint + path, data=body, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"lab {method} {path} failed: {exc.read().decode(errors='replace')[-3000:]}") from None

    def reset(self, scenario="demo", faults=None, **options):
        self.faults({})
        self.iam_enforcement(False)
        self.resources = self._call("POST", "/_lab/reset", {"scenario": scenario, "options": options})["resources"]
        self._creds = {}
        self.new_incident_store()  # the AWS state starts over: so do the records of it
        if faults:
            self.faults(faults)
        return self.resources

    def journal(self, since=0, action=None, service=None):
        """The requests answered after position `since`; after a mark, only those that also started after it: a
        request in flight at the mark (an earlier test's SQS long poll, 20 s) is not what came after it."""
        entries = self._call("GET", f"/_lab/journal?since={since}")["entries"]
        started_after = self._mark_times.get(since, 0) if since else 0
        return [e for e in entries if (action is None or e["action"] == action)
                and (service is None or e["service"] == service) and e["started"] >= started_after]

    def mark(self):
        """The journal position now: pass it as `since` to see only what came after."""
        answer = self._call("GET", f"/_lab/journal?since={1 << 62}")  # the position, not the entries
        seq = answer.get("seq", 0)
        self._mark_times.setdefault(seq, time.time())
        return seq

    def clear_journal(self):
        self._call("DELETE", "/_lab/journal")

    def faults(self, config=None):
        if config is None:
            return self._call("GET", "/_lab/faults")
        return self._call("POST", "/_lab/faults", config)

    def iam_enforcement(self, enforce=True):
        return self._call("POST", "/_lab/iam", {"enforce": enforce})

    def service_control_policies(self, policies):
        """{account: [SCP documents]} applied to those member accounts under IAM enforcement ({} for none)."""
        return self._call("POST", "/_lab/iam", {"scp": policies})

    def open_flow(self, instance, eni_index=0, **flow):
        """Establish a flow on an instance's ENI (tests/lab/conntrack.py); the lab refuses one no rule allows."""
        inst = self.instance(instance)
        flow.setdefault("eni", inst["enis"][eni_index])
        return self._call("POST", "/_lab/flows", dict(flow, account=inst["account"], region=inst["region"]))

    def flows(self, eni=None, closed=False):
        query = "&".join(p for p in (f"eni={eni}" if eni else "", "closed=true" if closed else "") if p)
        return self._call("GET", "/_lab/flows" + (f"?{query}" if query else ""))["flows"]

    def touch_flows(self, ids):
        return self._call("POST", "/_lab/flows", {"touch": list(ids)})

    def advance_clock(self, seconds):
        self._creds.clear()  # assumed-role credentials end on the lab's clock (tests/lab/sts_sessions.py)
        return self._call("POST", "/_lab/clock", {"advance": seconds})

    def detect_finding(self, account, region, spec):
        """GuardDuty reports a finding now (spec as a scenario's); returns it (GetFindings' python form)."""
        return self._call("POST", "/_lab/guardduty/findings", {"account": account, "region": region, "finding": spec})

    def recur_finding(self, finding_id):
        """The activity of a finding is seen again: GuardDuty updates it (count, updatedAt)."""
        return self._call("POST", "/_lab/guardduty/findings", {"recur": finding_id})

    # -- AWS clients --------------------------------------------------------------------------
    def instance(self, name):
        return self.resources["instances"][name]

    def credentials(self, account=DEFAULT_ACCOUNT):
        if account == DEFAULT_ACCOUNT:
            return dict(LAB_CREDENTIALS)
        if account not in self._creds:
            sts = boto3.client("sts", region_name="us-east-1", endpoint_url=self.endpoint, **LAB_CREDENTIALS)
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/GuardDutyResponder",
                                RoleSessionName="lab-test")["Credentials"]
            self._creds[account] = {"aws_access_key_id": c["AccessKeyId"],
                                    "aws_secret_access_key": c["SecretAccessKey"],
                                    "aws_session_token": c["SessionToken"]}
        return self._creds[account]

    def client(self, service, account=DEFAULT_ACCOUNT, region="us-east-1"):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint,
                            config=Config(retries={"mode": "standard", "max_attempts": 10}),
                            **self.credentials(account))

    # -- Ansible ------------------------------------------------------------------------------
    def env(self, account=DEFAULT_ACCOUNT, region="us-east-1"):
        creds = self.credentials(account)
        env = dict(os.environ)
        env.update({
            "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_URL": self.endpoint,
            "LAB_ENDPOINT": self.endpoint,
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_NOCOLOR": "1",
            "CLOUDSEC_GUARDDUTY_INCIDENT_STORE": self.incident_store,
        })
        env["CLOUDSEC_GUARDDUTY_INCIDENT_STORE"] = self.incident_store
        if creds.get("aws_session_token"):
            env["AWS_SESSION_TOKEN"] = creds["aws_session_token"]
        else:
            env.pop("AWS_SESSION_TOKEN", None)
        return env

    def run_playbook(self, playbook, extra_vars=None, check=False, diff=False, inventory=None, limit=None,
                     account=DEFAULT_ACCOUNT, region="us-east-1", expect_rc=(0,), extra_args=()):
        """Run a playbook (a path, or YAML text) and return {"rc", "plays", "tasks", "stats", "stderr"}.

        `tasks` maps each task name to its per-host results, in run order.
        """
        with tempfile.TemporaryDirectory() as tmp:
            if "\n" in str(playbook):
                path = pathlib.Path(tmp) / "playbook.yml"
                path.write_text(playbook)
            else:
                path = pathlib.Path(playbook)
            cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(path)]
            cmd += ["-i", str(inventory or REPO / "tests/inventory/localhost.yml")]
            if extra_vars:
                vars_file = pathlib.Path(tmp) / "vars.json"
                vars_file.write_text(json.dumps(extra_vars))
                cmd += ["-e", f"@{vars_file}"]
            if check:
                cmd.append("--check")
            if diff:
                cmd.append("--diff")
            if limit:
                cmd += ["--limit", limit]
            cmd += list(extra_args)
            proc = subprocess.run(cmd, cwd=str(REPO), env=self.env(account, region), capture_output=True,
                                  text=True, timeout=900, check=False)
        try:
            start = proc.stdout.index("{")
            data = json.loads(proc.stdout[start:])
        except ValueError:
            raise AssertionError(f"ansible-playbook printed no JSON (rc={proc.returncode}):\n"
                                 f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}") from None
        tasks = {}
        for play in data.get("plays", []):
            for task in play.get("tasks", []):
                tasks.setdefault(task["task"]["name"], {}).update(task["hosts"])
        result = {"rc": proc.returncode, "plays": data.get("plays", []), "tasks": tasks,
                  "stats": data.get("stats", {}), "stderr": proc.stderr}
        if expect_rc is not None and proc.returncode not in expect_rc:
            raise AssertionError(f"ansible-playbook rc={proc.returncode}, expected {expect_rc}:\n"
                                 f"{json.dumps(tasks, indent=1, default=str)[-6000:]}\n{proc.stderr[-3000:]}")
        return result

    def run_module(self, module, args, check=False, diff=False, account=DEFAULT_ACCOUNT, region="us-east-1",
                   expect_rc=(0,)):
        """Run one module on localhost; returns its result dict."""
        playbook = json.dumps([{
            "hosts": "localhost", "gather_facts": False,
            "tasks": [{"name": "module under test", module: args}],
        }], indent=1) + "\n"
        out = self.run_playbook(playbook, check=check, diff=diff, account=account, region=region,
                                expect_rc=expect_rc)
        return out["tasks"]["module under test"]["localhost"]


def start_lab(scenario="empty", extra_args=(), log_path=None):
    """Start `python -m tests.lab` on a free port; returns (endpoint, process)."""
    log_path = log_path or tempfile.mkstemp(prefix="lab-", suffix=".log")[1]
    cmd = [sys.executable, "-m", "tests.lab", "--port", "0", "--scenario", scenario, *extra_args]
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO), stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 180
    text = ""
    while time.time() < deadline and proc.poll() is None:
        text = pathlib.Path(log_path).read_text(encoding="utf-8", errors="replace")
        match = re.search(r"LAB READY (http://\S+)", text)
        if match:
            return match.group(1), proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the lab did not start (log {log_path}):\n" + text[-5000:])


def stop_lab(proc):
    """Stop a lab started by start_lab: terminate, then kill if it does not exit within 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def lab():
    endpoint, proc = start_lab("empty")
    client = LabClient(endpoint, proc)
    yield client
    stop_lab(proc)


@pytest.fixture
def demo(lab):
    lab.reset("demo")
    return lab
