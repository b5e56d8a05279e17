"""The IAM policies in docs/iam/ are enough for the playbooks, and no more than they need.

The demo runs under the lab's IAM enforcement (tests/lab/iam_enforcement.py) as a responder would in AWS:
an IAM user of the administrator account holds exactly docs/iam/inventory-readonly.json (the inventory, and
sts:AssumeRole into GuardDutyResponder), and the GuardDutyResponder role of every account holds exactly
docs/iam/responder.json (isolate, scan) or release.json (release). A call the policy does not allow is
refused by the lab as AWS would (UnauthorizedOperation / AccessDenied) and shows in the journal, so:
- enough: the runs succeed and the journal holds no refused call;
- no more: every action a policy allows is called by the runs, or named below as needed only by an
  opt-in stage or a first run; and with one needed action removed the run fails, naming the action.

The lab evaluates actions, the Resource ARNs each call touches, and the conditions the policies use
(aws:TagKeys, aws:RequestTag/*, aws:ResourceTag/*, ec2:CreateAction, iam:PassedToService, ...): see
tests/lab/iam_enforcement.py; docs/iam/README.md says what is left to review.
"""

import copy
import json
import pathlib
import subprocess
import sys

import boto3
import botocore.session
import pytest

from tests.integration_lab.secrets_check import run_at_vvv_and_assert_no_secret
from tests.lab.pytest_plugin import LabClient
from tests.lab.scenario import DEFAULT_ACCOUNT, RESPONDER_ROLE

REPO = pathlib.Path(__file__).resolve().parents[2]
IAM_DIR = REPO / "docs/iam"
MEMBER = "111122223333"
COMPROMISED = ("web-1", "app-1", "api-1", "worker-1")
OPERATOR_USER = "guardduty-operator"
INVENTORY = """\
plugin: cloudsec.guardduty.guardduty
region: us-east-1
regions: [us-east-1, eu-west-1]
accounts: ["111122223333"]
account_role_arn: "arn:aws:iam::{account_id}:role/GuardDutyResponder"
responder_role_arn: "arn:aws:iam::{account_id}:role/GuardDutyResponder"
"""

# Allowed by a policy although the demo's runs do not call them: each needed by a path the demo does not take.
NOT_CALLED_BY_THE_DEMO = {
    "responder.json": {
        "ec2:DescribeRegions": "the inventory lists the regions when its `regions` option is unset",
        "iam:GetRolePolicy": "a rerun reads the quarantine policy the first run wrote",
        "iam:GetRole": "first malware scan in an account: is Malware Protection's service-linked role there?",
        "iam:CreateServiceLinkedRole": "first malware scan in an account: GuardDuty creates the role",
        "ec2:DescribeVpcEndpoints": "a subnet routed through a VPC endpoint (Gateway Load Balancer, Network Firewall)",
    },
    # release undoes whatever isolate recorded, opt-in stages included
    "release.json": {
        "ec2:DescribeRegions": "the inventory lists the regions when its `regions` option is unset",
        "autoscaling:ExitStandby": "undoes isolate_detach_asg_mode: standby",
        "ec2:ReplaceNetworkAclAssociation": "undoes isolate_subnet_containment",
        "ec2:AuthorizeSecurityGroupIngress": "undoes isolate_triage_apply_network",
        "ec2:ReplaceIamInstanceProfileAssociation": "undoes isolate_credentials_profile_action: replace",
        "iam:PutRolePolicy": "rewrites the quarantine policy while other instances of the role stay quarantined",
        "iam:GetInstanceProfile": "an instance released with no credentials record: its current profile's role",
        "iam:PassRole": "not a call of its own: EC2 (and the lab) check it on AssociateIamInstanceProfile",
    },
}
# botocore service models holding each IAM prefix's operations
MODEL_FOR_PREFIX = {"ec2": ["ec2"], "autoscaling": ["autoscaling"], "elasticloadbalancing": ["elbv2", "elb"],
                    "guardduty": ["guardduty"], "iam": ["iam"], "sts": ["sts"], "s3": ["s3"], "support": ["support"],
                    "securityhub": ["securityhub"], "sqs": ["sqs"]}
READ_PREFIXES = ("Describe", "List", "Get")
# Write actions AWS authorizes on "*" only (no resource-level permission exists for them)
WRITES_ON_ANY_RESOURCE = {"guardduty:StartMalwareScan", "support:CreateCase"}


def load_policy(name):
    return json.loads((IAM_DIR / name).read_text())


def statements(policy):
    found = policy["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value):
    return value if isinstance(value, list) else [value]


def allowed_actions(policy):
    return {a for s in statements(policy) if s["Effect"] == "Allow" for a in as_list(s["Action"])}


def without(policy, action):
    """The policy with one action taken out of every Allow statement (statements left empty are dropped)."""
    assert action in allowed_actions(policy), f"{action} is not in the policy: the spot check tests nothing"
    out = copy.deepcopy(policy)
    kept = []
    for statement in statements(out):
        if statement["Effect"] == "Allow":
            remaining = [a for a in as_list(statement["Action"]) if a != action]
            if not remaining:
                continue
            statement["Action"] = remaining
        kept.append(statement)
    out["Statement"] = kept
    return out


class Identity(LabClient):
    """The lab, driven with one identity's credentials instead of the operator's."""

    def __init__(self, lab, credentials):
        super().__init__(lab.endpoint)
        self.resources = lab.resources
        self._identity = credentials

    def credentials(self, account=DEFAULT_ACCOUNT):
        return dict(self._identity)


def grant(lab, operator_policy, responder_policy):
    """An IAM user holding `operator_policy` (the credentials the playbooks run with), and `responder_policy`
    as the only policy of GuardDutyResponder in every account. Enforcement stays off until `enforce`."""
    iam = lab.client("iam")
    iam.create_user(UserName=OPERATOR_USER)
    iam.put_user_policy(UserName=OPERATOR_USER, PolicyName="operator", PolicyDocument=json.dumps(operator_policy))
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    set_responder_policy(lab, responder_policy)
    return Identity(lab, {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]})


def set_responder_policy(lab, policy):
    for account in lab.resources["accounts"]:
        iam = operator_iam(lab, account)
        for name in iam.list_role_policies(RoleName=RESPONDER_ROLE)["PolicyNames"]:
            iam.delete_role_policy(RoleName=RESPONDER_ROLE, PolicyName=name)
        iam.put_role_policy(RoleName=RESPONDER_ROLE, PolicyName="responder", PolicyDocument=json.dumps(policy))


def operator_iam(lab, account):
    """IAM of an account as the lab's operator (exempt from enforcement), through OrganizationAccountAccessRole."""
    if account == DEFAULT_ACCOUNT:
        return lab.client("iam")
    sts = lab.client("sts")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                            RoleSessionName="lab-test-operator")["Credentials"]
    return boto3.client("iam", region_name="us-east-1", endpoint_url=lab.endpoint, aws_access_key_id=creds["AccessKeyId"],
                        aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])


def denied(lab, since):
    return [e for e in lab.journal(since=since) if e["injected"] == "iam"]


def called(lab, since):
    """IAM action names of the calls answered since `since`."""
    prefix = {"elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}
    return {f"{prefix.get(e['service'], e['service'])}:{e['action']}" for e in lab.journal(since=since)
            if e["action"] and e["status"] < 400}


def describe(entries):
    return "\n".join(f"{e['account']} {e['region']} {e['service']}:{e['action']} {e['outcome']} "
                     f"{json.dumps(e.get('params'), sort_keys=True)[:400]}" for e in entries)


@pytest.fixture
def enforced(demo, tmp_path):
    (tmp_path / "lab.guardduty.yml").write_text(INVENTORY)
    yield demo
    demo.iam_enforcement(False)


def run_vars(tmp_path):
    return {"incident_id": "INC-LP", "isolate_evidence_dir": str(tmp_path / "evidence"),
            "isolate_report_dir": str(tmp_path / "reports"), "release_report_dir": str(tmp_path / "reports")}


def run(identity, tmp_path, playbook, extra_vars=None, limit=None, expect_rc=(0,)):
    variables = dict(run_vars(tmp_path), **(extra_vars or {}))
    return identity.run_playbook(str(REPO / "playbooks" / playbook), extra_vars=variables, limit=limit,
                                 inventory=tmp_path / "lab.guardduty.yml", expect_rc=expect_rc)


def failures(out):
    """Every failed host result's message, across tasks."""
    return [f"{task}: {host}: {result.get('msg')}" for task, hosts in out["tasks"].items()
            for host, result in hosts.items() if result.get("failed")]


def enis_by_instance(lab, names):
    return {lab.instance(n)["id"]: list(lab.instance(n)["enis"]) for n in names}


def groups_now(lab, name):
    inst = lab.instance(name)
    ec2 = lab.client("ec2", inst["account"], inst["region"])
    enis = ec2.describe_network_interfaces(NetworkInterfaceIds=inst["enis"])["NetworkInterfaces"]
    return {e["NetworkInterfaceId"]: [g["GroupId"] for g in e["Groups"]] for e in enis}


def tag(lab, name, key):
    inst = lab.instance(name)
    ec2 = lab.client("ec2", inst["account"], inst["region"])
    described = ec2.describe_instances(InstanceIds=[inst["id"]])["Reservations"][0]["Instances"][0]
    return {t["Key"]: t["Value"] for t in described.get("Tags", [])}.get(key)


# -- the policies themselves ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(p.name for p in IAM_DIR.glob("*.json")))
def test_every_action_exists_and_no_action_is_a_wildcard(name):
    policy = load_policy(name)
    session = botocore.session.get_session()
    operations = {}
    for statement in statements(policy):
        assert statement["Effect"] in ("Allow", "Deny") and statement.get("Sid"), statement
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{name}: wildcard action {action}"
            prefix, operation = action.split(":")
            if prefix not in operations:
                operations[prefix] = {op for model in MODEL_FOR_PREFIX[prefix]
                                      for op in session.get_service_model(model).operation_names}
            # iam:PassRole is a permission only, no API operation; s3:ListBucket is the permission of ListObjects(V2),
            # which S3 also checks to answer NoSuchKey rather than AccessDenied for an absent key (the incident store)
            assert operation in operations[prefix] or action in ("iam:PassRole", "s3:ListBucket"), \
                f"{name}: {action} does not exist"
    assert len({s["Sid"] for s in statements(policy)}) == len(statements(policy)), f"{name}: duplicate Sid"


@pytest.mark.parametrize("name", ["responder.json", "release.json", "eradicate.json", "inventory-readonly.json"])
def test_writes_are_scoped_to_resources_where_aws_allows_it(name):
    for statement in statements(load_policy(name)):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement["Resource"]):
            continue
        writes = [a for a in as_list(statement["Action"])
                  if not a.split(":")[1].startswith(READ_PREFIXES) and a not in WRITES_ON_ANY_RESOURCE]
        assert not writes, f"{name} {statement['Sid']}: writes on any resource: {writes}"


def test_inventory_readonly_is_the_inventory_plugins_policy():
    # inventory-readonly.json is canonical; inventory.json (the plugin's page links it) must not drift from it
    assert load_policy("inventory-readonly.json") == load_policy("inventory.json")
    assert all(a.split(":")[1].startswith(READ_PREFIXES) or a == "sts:AssumeRole"
               for a in allowed_actions(load_policy("inventory-readonly.json")))


def test_trust_policy_names_a_principal_and_a_condition():
    trust = load_policy("responder-trust.json")
    for statement in statements(trust):
        assert statement["Action"] == "sts:AssumeRole" and statement["Principal"]["AWS"] != "*"
        assert statement["Condition"], "a trust policy without a condition lets any session of the principal in"


# -- enough: the runs need nothing beyond the policies ---------------------------------------------------
def test_inventory_needs_only_inventory_readonly(enforced, tmp_path):
    identity = grant(enforced, load_policy("inventory-readonly.json"), load_policy("responder.json"))
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    env = identity.env()
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    proc = subprocess.run([str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "-i",
                           str(tmp_path / "lab.guardduty.yml"), "--list"], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    refused = denied(enforced, mark)
    assert not refused, "the inventory needs more than inventory-readonly.json:\n" + describe(refused)
    hosts = json.loads(proc.stdout)["_meta"]["hostvars"]
    assert set(hosts) == {enforced.instance(n)["id"] for n in COMPROMISED}
    assert "sts:AssumeRole" in called(enforced, mark)  # the member account was read through its role


def test_isolate_scan_release_need_nothing_beyond_the_policies_and_leak_no_secret(enforced, tmp_path):
    responder = load_policy("responder.json")
    identity = grant(enforced, load_policy("inventory-readonly.json"), responder)
    originals = {n: groups_now(enforced, n) for n in COMPROMISED}
    enforced.iam_enforcement(True)

    mark = enforced.mark()
    out = run(identity, tmp_path, "isolate.yml", expect_rc=None)
    refused = denied(enforced, mark)
    assert not refused, "isolate needs more than responder.json:\n" + describe(refused)
    assert out["rc"] == 0, "\n".join(failures(out)) or out["stderr"][-3000:]
    # A rerun reads the records the first run wrote. It runs at -vvv with the default output, and neither
    # that output nor the reports and evidence of both runs may hold a credential (secrets_check.py).
    run_at_vvv_and_assert_no_secret(identity, tmp_path, tmp_path / "lab.guardduty.yml", "isolate.yml", run_vars(tmp_path),
                                    tmp_path / "evidence", tmp_path / "reports")
    refused = denied(enforced, mark)
    assert not refused, "an isolate rerun needs more than responder.json:\n" + describe(refused)
    scan = run(identity, tmp_path, "scan.yml", expect_rc=None)
    refused = denied(enforced, mark)
    assert not refused, "scan needs more than responder.json:\n" + describe(refused)
    assert scan["rc"] == 0, "\n".join(failures(scan))
    used_by_responder = called(enforced, mark)

    enforced.iam_enforcement(False)
    for name in COMPROMISED:
        assert tag(enforced, name, "guardduty:isolation") == "isolated", name
        assert all(groups != originals[name][eni] for eni, groups in groups_now(enforced, name).items()), name
    unused = allowed_actions(responder) - used_by_responder - set(NOT_CALLED_BY_THE_DEMO["responder.json"])
    assert not unused, f"responder.json allows actions no run called: {sorted(unused)}"

    release = load_policy("release.json")
    set_responder_policy(enforced, release)
    # release archives the released findings as the GuardDuty administrator: the operator's own credentials
    enforced.client("iam").put_user_policy(UserName=OPERATOR_USER, PolicyName="operator-findings",
                                           PolicyDocument=json.dumps(load_policy("operator-findings.json")))
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    out = run(identity, tmp_path, "release.yml", extra_vars={"release_confirm": "INC-LP"}, expect_rc=None)
    refused = denied(enforced, mark)
    assert not refused, "release needs more than release.json:\n" + describe(refused)
    assert out["rc"] == 0, "\n".join(failures(out)) or out["stderr"][-3000:]
    used_by_release = called(enforced, mark)
    enforced.iam_enforcement(False)
    for name in COMPROMISED:
        assert groups_now(enforced, name) == originals[name], name
    unused = allowed_actions(release) - used_by_release - set(NOT_CALLED_BY_THE_DEMO.get("release.json", {}))
    assert not unused, f"release.json allows actions no run called: {sorted(unused)}"


# -- no more: each needed action, removed, fails the run and is named --------------------------------------
@pytest.mark.parametrize("playbook, action", [
    ("isolate.yml", "ec2:ModifyNetworkInterfaceAttribute"),
    ("isolate.yml", "ec2:CreateSnapshots"),
    ("isolate.yml", "ec2:DisassociateIamInstanceProfile"),
    ("scan.yml", "guardduty:StartMalwareScan"),
])
def test_without_one_needed_action_the_run_fails_naming_it(enforced, tmp_path, playbook, action):
    identity = grant(enforced, load_policy("inventory-readonly.json"), without(load_policy("responder.json"), action))
    enforced.iam_enforcement(True)
    mark = enforced.mark()
    out = run(identity, tmp_path, playbook, limit=enforced.instance("web-1")["id"], expect_rc=None)
    assert out["rc"] != 0
    refused = denied(enforced, mark)
    assert refused and {f"{e['service'] if e['service'] != 'elbv2' else 'elasticloadbalancing'}:{e['action']}"
                        for e in refused} == {action}, describe(refused)
    messages = failures(out)
    named = [m for m in messages if action.split(":")[1] in m and ("UnauthorizedOperation" in m or "AccessDenied" in m)]
    assert named, f"no failure names {action} and the refusal:\n" + "\n".join(messages)
