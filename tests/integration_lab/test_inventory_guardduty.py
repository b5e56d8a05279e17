"""cloudsec.guardduty.guardduty against the lab's demo scenario, through the real ansible-inventory.

Demo: administrator 123456789012 (us-east-1, eu-west-1) sees member 111122223333's findings;
web-1, app-1, api-1, worker-1 have active EC2 findings; bastion-1's only finding is archived;
healthy-1, worker-2, idle-1 have none; an S3 finding exists; 111122223333 has no detector in eu-west-1.
"""

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

ADMIN = "123456789012"
MEMBER = "111122223333"
COMPROMISED = ["web-1", "app-1", "api-1", "worker-1"]
REPO = pathlib.Path(__file__).resolve().parents[2]
BASE = """
plugin: cloudsec.guardduty.guardduty
region: us-east-1
regions: [us-east-1, eu-west-1]
"""


def run_inventory(lab, tmp_path, config, *args, env=None, name="lab.guardduty.yml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(config))
    run_env = lab.env()
    run_env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    run_env.update(env or {})
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-inventory"), "-i", str(path), *(args or ["--list"])]
    proc = subprocess.run(cmd, cwd=str(REPO), env=run_env, capture_output=True, text=True, timeout=300, check=False)
    if args and args[0] == "--graph":
        return proc
    data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc, plain(data)


def plain(value):
    """`--list` marks values that are not trusted templates as {"__ansible_unsafe": value}: every value from
    AWS is (a finding title is attacker-influenced text). Unwrapped here; the test on
    ansible_python_interpreter checks the one trusted template is not marked."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def hosts_of(data, group="all"):
    """Host names in a group of `ansible-inventory --list` output, children included."""
    node = data.get(group) or {}
    names = set(node.get("hosts", []))
    for child in node.get("children", []):
        names |= hosts_of(data, child)
    return names


def ids(lab, *names):
    return {lab.instance(n)["id"] for n in names}


def groups_of(data, host):
    return {g for g, node in data.items() if g != "_meta" and host in node.get("hosts", [])}


def gd_calls(lab, since=0):
    return [e for e in lab.journal(since=since) if e["service"] == "guardduty"]


def test_demo_hosts_groups_and_vars(demo, tmp_path):
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert proc.returncode == 0, proc.stderr
    raw = json.loads(proc.stdout)["_meta"]["hostvars"]
    assert all(v["ansible_python_interpreter"] == "{{ ansible_playbook_python }}" for v in raw.values())
    assert all(v["instance_id"] == {"__ansible_unsafe": h} for h, v in raw.items())
    web, app, api, worker = (demo.instance(n)["id"] for n in COMPROMISED)
    assert hosts_of(data) == {web, app, api, worker}
    assert hosts_of(data, "compromised") == {web, app, api, worker}
    assert hosts_of(data, "severity_high") == {web, app, api, worker}
    assert hosts_of(data, "finding_backdoor") == {web}
    assert hosts_of(data, "finding_unauthorized_access") == {web, worker}
    assert hosts_of(data, "finding_crypto_currency") == {app}
    assert hosts_of(data, "finding_trojan") == {api}
    assert hosts_of(data, "account_123456789012") == {web, app, api}
    assert hosts_of(data, "account_111122223333") == {worker}
    assert hosts_of(data, "region_us_east_1") == {web, app, worker}
    assert hosts_of(data, "region_eu_west_1") == {api}
    assert groups_of(data, web) == {"guardduty", "compromised", "severity_high", "finding_backdoor", "finding_unauthorized_access",
                                    "account_123456789012", "region_us_east_1"}

    hostvars = data["_meta"]["hostvars"]
    ec2 = demo.client("ec2", ADMIN, "us-east-1")
    described = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]
    v = hostvars[web]
    assert (v["instance_id"], v["account_id"], v["region"]) == (web, ADMIN, "us-east-1")
    assert v["responder_role_arn"] == f"arn:aws:iam::{ADMIN}:role/GuardDutyResponder"
    assert v["ansible_connection"] == "local" and v["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert v["guardduty_availability_zone"] == described["Placement"]["AvailabilityZone"]
    assert v["guardduty_vpc_id"] == described["VpcId"] and v["guardduty_subnet_id"] == described["SubnetId"]
    assert [n["network_interface_id"] for n in v["guardduty_network_interfaces"]] == demo.instance("web-1")["enis"]
    assert sorted(v["guardduty_security_group_ids"]) == sorted(g["GroupId"] for g in described["SecurityGroups"])
    assert v["guardduty_iam_instance_profile"]["arn"] == described["IamInstanceProfile"]["Arn"]
    assert v["guardduty_tags"]["Service"] == "storefront" and v["guardduty_image_id"] == described["ImageId"]
    assert v["guardduty_max_severity"] == 8.0 and v["guardduty_severity_label"] == "high"
    assert v["guardduty_finding_types"] == ["Backdoor:EC2/C&CActivity.B", "UnauthorizedAccess:EC2/SSHBruteForce"]
    assert v["guardduty_finding_families"] == ["Backdoor", "UnauthorizedAccess"]
    assert "203.0.113.77" in v["guardduty_remote_ips"] and 22 in v["guardduty_local_ports"]
    assert [f["severity"] for f in v["guardduty_findings"]] == [8.0, 2.0]

    # the findings are GuardDuty's, as boto3 sees them
    gd = demo.client("guardduty", ADMIN, "us-east-1")
    detector = gd.list_detectors()["DetectorIds"][0]
    listed = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "resource.instanceDetails.instanceId": {"Equals": [web]}, "service.archived": {"Equals": ["false"]}}})
    assert sorted(v["guardduty_finding_ids"]) == sorted(listed["FindingIds"])
    # the S3 finding exists and is not a host
    s3 = gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {
        "resource.resourceType": {"Equals": ["S3Bucket"]}}})["FindingIds"]
    assert len(s3) == 1 and not any(s3[0] in h["guardduty_finding_ids"] for h in hostvars.values())

    w = hostvars[worker]
    assert (w["account_id"], w["region"]) == (MEMBER, "us-east-1")
    assert w["responder_role_arn"] == f"arn:aws:iam::{MEMBER}:role/GuardDutyResponder"
    assert w["guardduty_finding_count"] == 2

    # every GuardDuty call went to the administrator; the member's instance was checked through its role
    journal = demo.journal()
    assert {e["account"] for e in journal if e["service"] == "guardduty"} == {ADMIN}
    assert any(e["action"] == "AssumeRole" and MEMBER in json.dumps(e["params"]) for e in journal)
    assert any(e["action"] == "DescribeInstances" and e["account"] == MEMBER for e in journal)
    assert all(e["outcome"] == "ok" for e in journal)


def test_graph_names_hosts_by_tag(demo, tmp_path):
    proc = run_inventory(demo, tmp_path, BASE + "hostnames: [tag:Name, instance-id]\n", "--graph")
    assert proc.returncode == 0, proc.stderr
    names = {line.strip(" |-") for line in proc.stdout.splitlines() if not line.strip(" |-").startswith("@")}
    assert names == set(COMPROMISED)


@pytest.mark.parametrize("archived, expected", [
    ("include", COMPROMISED + ["bastion-1"]),
    ("only", ["bastion-1"]),
    ("exclude", COMPROMISED),
])
def test_archived_findings(demo, tmp_path, archived, expected):
    _, data = run_inventory(demo, tmp_path, BASE + f"archived: {archived}\n")
    assert hosts_of(data) == ids(demo, *expected)


@pytest.mark.parametrize("filters, expected", [
    ("finding_types: ['Backdoor:EC2/*']", ["web-1"]),
    ("finding_types: [CryptoCurrency, Trojan]", ["app-1", "api-1"]),
    ("exclude_finding_types: [UnauthorizedAccess]", ["web-1", "app-1", "api-1"]),
    ("min_severity: 8.5", []),
    ("tags: {Service: [orders, api]}", ["app-1", "api-1"]),
    ("tags: {Environment: 'stag*'}", ["worker-1"]),
    ("updated_since: 1h", COMPROMISED),
    ("updated_since: '2100-01-01T00:00:00Z'", []),
])
def test_filters(demo, tmp_path, filters, expected):
    proc, data = run_inventory(demo, tmp_path, BASE + filters + "\n")
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == ids(demo, *expected)


def test_min_severity_keeps_only_the_findings_above_it(demo, tmp_path):
    _, data = run_inventory(demo, tmp_path, BASE + "min_severity: 5\n")
    hostvars = data["_meta"]["hostvars"]
    web, worker = demo.instance("web-1")["id"], demo.instance("worker-1")["id"]
    assert hostvars[web]["guardduty_finding_types"] == ["Backdoor:EC2/C&CActivity.B"]
    assert hostvars[worker]["guardduty_finding_count"] == 2  # 8.0 and 5.0
    # the bound went to GuardDuty, not only to the plugin
    listings = [e for e in demo.journal(action="ListFindings")]
    assert listings and all("severity" in json.dumps(e["params"]) for e in listings)


def test_accounts_through_their_role(demo, tmp_path):
    config = BASE + f"""
use_current_credentials: false
accounts: ["{ADMIN}", {{account_id: "{MEMBER}"}}]
account_role_arn: "arn:{{partition}}:iam::{{account_id}}:role/GuardDutyResponder"
"""
    proc, data = run_inventory(demo, tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == ids(demo, *COMPROMISED)
    journal = demo.journal()
    assumed = {e["params"].get("RoleArn") for e in journal if e["action"] == "AssumeRole"}
    assert {f"arn:aws:iam::{ADMIN}:role/GuardDutyResponder", f"arn:aws:iam::{MEMBER}:role/GuardDutyResponder"} <= assumed
    assert {(e["account"], e["region"]) for e in journal if e["action"] == "ListDetectors"} == {
        (ADMIN, "us-east-1"), (ADMIN, "eu-west-1"), (MEMBER, "us-east-1"), (MEMBER, "eu-west-1")}
    # asked once, for the partition of the role ARNs (it needs no permission); its account is not read
    assert [e["action"] for e in journal].count("GetCallerIdentity") == 1
    # worker-1's finding was read twice (administrator and member) and counts once
    worker = demo.instance("worker-1")["id"]
    assert data["_meta"]["hostvars"][worker]["guardduty_finding_count"] == 2
    assert f"account {MEMBER}: GuardDuty has no detector (not enabled) in eu-west-1" in proc.stderr


def test_cache_second_run_makes_no_aws_calls(demo, tmp_path):
    config = BASE + f"""
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: {tmp_path / 'cache'}
cache_timeout: 600
"""
    _, first = run_inventory(demo, tmp_path, config)
    mark = demo.mark()
    proc, second = run_inventory(demo, tmp_path, config)
    assert proc.returncode == 0, proc.stderr
    assert demo.journal(since=mark) == []
    assert second == first and hosts_of(second) == ids(demo, *COMPROMISED)
    _, third = run_inventory(demo, tmp_path, config, "--list", "--flush-cache")
    assert gd_calls(demo, since=mark) and third == first


def test_a_region_that_cannot_be_read_warns_and_the_rest_loads(demo, tmp_path):
    demo.faults({"forced": [{"service": "guardduty", "region": "eu-west-1", "action": "ListDetectors",
                             "code": "UnrecognizedClientException", "status": 403,
                             "message": "The security token included in the request is invalid."}]})
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == ids(demo, "web-1", "app-1", "worker-1")
    assert f"account {ADMIN} region eu-west-1: guardduty:ListDetectors refused: the region is not enabled for this account" \
        in " ".join(proc.stderr.split())

    proc, data = run_inventory(demo, tmp_path, BASE + "strict: true\n",
                               env={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"})
    assert proc.returncode != 0
    assert "eu-west-1" in proc.stderr and "UnrecognizedClientException" in proc.stderr


def test_missing_permission_names_the_call(demo, tmp_path):
    demo.faults({"forced": [{"service": "guardduty", "region": "us-east-1", "action": "GetFindings",
                             "code": "AccessDeniedException", "status": 403}]})
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == ids(demo, "api-1")
    assert f"account {ADMIN} region us-east-1: missing permission for guardduty:GetFindings" in " ".join(proc.stderr.split())


def test_throttling_is_retried(demo, tmp_path):
    demo.faults({"throttle_rate": 0.4, "seed": 7, "services": ["guardduty", "ec2", "sts"]})
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data) == ids(demo, *COMPROMISED)
    assert any(e["injected"] == "throttle" for e in demo.journal())
    assert "GuardDuty inventory" not in proc.stderr


def test_terminated_instances_are_dropped_with_a_warning(demo, tmp_path):
    app = demo.instance("app-1")["id"]
    demo.client("ec2", ADMIN, "us-east-1").terminate_instances(InstanceIds=[app])
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert hosts_of(data) == ids(demo, "web-1", "api-1", "worker-1")
    assert f"{app} dropped: instance is" in proc.stderr
    _, unchecked = run_inventory(demo, tmp_path, BASE + "check_instances: false\n")
    assert app in hosts_of(unchecked)


def test_bad_option_values_fail_the_source(demo, tmp_path):
    proc, data = run_inventory(demo, tmp_path, BASE + "updated_since: yesterday\n",
                               env={"ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "true"})
    assert proc.returncode != 0 and "updated_since" in proc.stderr


# -- a region's pages: GetFindings while the next page is asked ------------------------------------
SAMPLE_INSTANCE = "i-99999999"  # the instance of GuardDuty's sample findings: not one of the lab's
SECOND_PAGE_TOKEN = "eyJvZmZzZXQiOiA1MH0="  # the lab's NextToken after the first 50 ids: {"offset": 50}


def held(lab, account=ADMIN, region="us-east-1"):
    return lab._call("GET", f"/_lab/guardduty?account={account}&region={region}")


def sixty_sample_findings(lab):
    """60 more medium findings in the administrator's us-east-1: the medium band's listing has two pages."""
    client = lab.client("guardduty", ADMIN, "us-east-1")
    detector = lab.resources["accounts"][ADMIN]["regions"]["us-east-1"]["detector_id"]
    for _ in range(2):
        client.create_sample_findings(DetectorId=detector, FindingTypes=["Recon:EC2/PortProbeUnprotectedPort"] * 30)


def test_get_findings_start_while_the_next_page_is_listed(demo, tmp_path):
    sixty_sample_findings(demo)
    # every answer held 300 ms, as AWS takes its time: the second page cannot be in before the first page's findings
    # are asked, unless they wait for the whole listing
    demo.faults({"latency_ms": [300, 300]})
    mark = demo.mark()
    proc, data = run_inventory(demo, tmp_path, BASE + "check_instances: false\n")
    assert proc.returncode == 0, proc.stderr
    assert SAMPLE_INSTANCE in hosts_of(data) and ids(demo, *COMPROMISED) <= hosts_of(data)
    calls = [e for e in gd_calls(demo, mark) if e["region"] == "us-east-1"]
    second_pages = [e for e in calls if e["action"] == "ListFindings" and e["params"].get("nextToken")]
    assert len(second_pages) == 1
    samples = {f["Id"] for f in held(demo)["findings"] if f["Type"] == "Recon:EC2/PortProbeUnprotectedPort"}
    # the medium band's first page holds samples; the other bands' one-page listings say nothing here
    first_get = min(e["started"] for e in calls if e["action"] == "GetFindings" and samples & set(e["params"]["findingIds"]))
    assert first_get < second_pages[0]["time"]
    # nothing asked twice: the 60 samples and the demo's medium findings, each id in one GetFindings
    asked = [i for e in calls if e["action"] == "GetFindings" for i in e["params"]["findingIds"]]
    assert len(asked) == len(set(asked)) >= 60


def test_a_listing_that_fails_on_a_later_page_drops_the_pages_it_read(demo, tmp_path):
    sixty_sample_findings(demo)
    demo.faults({"forced": [{"service": "guardduty", "action": "ListFindings", "resource": SECOND_PAGE_TOKEN,
                             "code": "AccessDeniedException", "status": 403}]})
    proc, data = run_inventory(demo, tmp_path, BASE + "check_instances: false\n")
    assert proc.returncode == 0, proc.stderr
    assert [e["status"] for e in gd_calls(demo) if e["action"] == "ListFindings" and e["params"].get("nextToken")] == [403]
    # whether the first page's GetFindings had started (and were answered) or were cancelled, none of its findings
    # is a host: the listing is reported as not read
    assert SAMPLE_INSTANCE not in hosts_of(data)
    assert f"account {ADMIN} region us-east-1: missing permission for guardduty:ListFindings; its findings are not " \
        "in this inventory" in " ".join(proc.stderr.split())
    assert ids(demo, "api-1") <= hosts_of(data)  # eu-west-1 still loads


def test_each_member_role_is_assumed_once_and_the_roles_at_the_same_time(lab, tmp_path):
    """Several members' responder roles are assumed in parallel, each once for all its regions: behind one lock for
    every role, they went one after the other."""
    lab.reset("generated:8:4:2", unit="instances")  # the administrator and 3 members, 2 regions each
    lab.faults({"latency_ms": [300, 300]})  # as AWS takes its time: calls that wait on each other cannot overlap
    mark = lab.mark()
    try:
        proc, data = run_inventory(lab, tmp_path, "plugin: cloudsec.guardduty.guardduty\nregion: us-east-1\n"
                                                  "regions: [us-east-1, eu-west-1]\n")
    finally:
        lab.faults({})
    assert proc.returncode == 0, proc.stderr
    assert len([h for h in hosts_of(data) if h.startswith("i-")]) == 8, hosts_of(data)
    assumed = [e for e in lab.journal(since=mark) if e["action"] == "AssumeRole"]
    assert sorted(e["params"]["RoleArn"] for e in assumed) == [
        f"arn:aws:iam::{account}:role/GuardDutyResponder" for account in sorted(("111122223333", "444455556666", "777788889999"))]
    assert max(e["started"] for e in assumed) < min(e["time"] for e in assumed), [
        (e["started"], e["time"]) for e in assumed]
