"""cloudsec.guardduty.ec2_isolation against the lab: AWS state and the lab's journal are the evidence."""

import json
import statistics
import threading

MODULE = "cloudsec.guardduty.ec2_isolation"
READ_PREFIXES = ("Describe", "Get", "List")
OPEN = ("0.0.0.0/0", "::/0")


# -- helpers -----------------------------------------------------------------------------------
def isolate(lab, names, account="123456789012", region="us-east-1", check=False, diff=False, expect_rc=(0,), **args):
    ids = [lab.instance(n)["id"] for n in names]
    return lab.run_module(MODULE, dict({"instance_ids": ids}, **args), check=check, diff=diff, account=account,
                          region=region, expect_rc=expect_rc)


def writes(entries):
    return [e for e in entries if e["service"] == "ec2" and not e["action"].startswith(READ_PREFIXES)]


def group_ids_of(params):
    return [params[k] for k in sorted((k for k in params if k.startswith("SecurityGroupId.")),
                                      key=lambda k: int(k.split(".")[1]))]


def moves(entries, eni_id=None):
    """[(eni, [groups])] of the ModifyNetworkInterfaceAttribute calls that succeeded, in order."""
    return [(e["params"]["NetworkInterfaceId"], group_ids_of(e["params"])) for e in entries
            if e["action"] == "ModifyNetworkInterfaceAttribute" and e["outcome"] == "ok"
            and (eni_id is None or e["params"]["NetworkInterfaceId"] == eni_id)]


def eni(lab, eni_id, account="123456789012", region="us-east-1"):
    return lab.client("ec2", account, region).describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]


def eni_groups(lab, eni_id, **kw):
    return [g["GroupId"] for g in eni(lab, eni_id, **kw)["Groups"]]


def security_group(lab, group_id, account="123456789012", region="us-east-1"):
    return lab.client("ec2", account, region).describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]


def instance_tags(lab, name, account="123456789012", region="us-east-1"):
    reservations = lab.client("ec2", account, region).describe_instances(InstanceIds=[lab.instance(name)["id"]])
    return {t["Key"]: t["Value"] for t in reservations["Reservations"][0]["Instances"][0].get("Tags", [])}


def by_id(result):
    return result["instances"]


def error_of(item):
    """The instance's error message (the module's `error` is an InstanceProblem: instance, action, code, message)."""
    return (item.get("error") or {}).get("message")


def assert_isolation_group_closed(lab, result, entries, account="123456789012", region="us-east-1", allowed=()):
    """No open rule on any isolation group: in AWS now, and never authorized during the run."""
    isolation_ids = {v["isolation"] for v in result["security_groups"].values()}
    for group_id in isolation_ids:
        group = security_group(lab, group_id, account, region)
        cidrs = [r.get("CidrIp") or r.get("CidrIpv6") for p in group["IpPermissions"] + group["IpPermissionsEgress"]
                 for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])]
        assert sorted(cidrs) == sorted(allowed), (group_id, group)
    for entry in entries:
        if entry["action"].startswith("AuthorizeSecurityGroup") and entry["params"].get("GroupId") in isolation_ids:
            assert not any(v in OPEN for v in entry["params"].values()), entry


def assert_converted_then_isolated(lab, result, entries, instance_name, account="123456789012", region="us-east-1"):
    """Each ENI of the instance: original groups -> the conversion group -> the isolation group, nothing else."""
    groups_by_vpc = result["security_groups"]
    item = by_id(result)[lab.instance(instance_name)["id"]]
    assert item["state"] == "isolated" and item["error"] is None, item
    assert len(item["network_interfaces"]) == len(lab.instance(instance_name)["enis"])
    for nic in item["network_interfaces"]:
        vpc = groups_by_vpc[nic["vpc_id"]]
        assert moves(entries, nic["network_interface_id"]) == [
            (nic["network_interface_id"], [vpc["conversion"]]),
            (nic["network_interface_id"], [vpc["isolation"]]),
        ]
        assert eni_groups(lab, nic["network_interface_id"], account=account, region=region) == [vpc["isolation"]]
        assert nic["security_groups"] == [vpc["isolation"]]


def dwell_seconds(entries):
    """Per ENI, time between the end of its conversion move and the end of its isolation move (journal)."""
    first = {}
    out = []
    for entry in entries:
        if entry["action"] != "ModifyNetworkInterfaceAttribute" or entry["outcome"] != "ok":
            continue
        eni_id = entry["params"]["NetworkInterfaceId"]
        if eni_id in first:
            out.append(entry["time"] - first.pop(eni_id))
        else:
            first[eni_id] = entry["time"]
    return out


# -- isolation ---------------------------------------------------------------------------------
def test_single_eni_ipv6_instance_goes_original_conversion_isolation(demo):
    original = eni_groups(demo, demo.instance("web-1")["enis"][0])
    assert len(original) == 2
    mark = demo.mark()
    result = isolate(demo, ["web-1"], incident_id="IR-7")
    entries = demo.journal(mark)
    assert result["changed"] is True
    assert_converted_then_isolated(demo, result, entries, "web-1")
    assert_isolation_group_closed(demo, result, entries)
    nic = by_id(result)[demo.instance("web-1")["id"]]["network_interfaces"][0]
    assert nic["original_security_groups"] == original
    # The record is on the ENI and was written before the first move.
    tags = {t["Key"]: t["Value"] for t in eni(demo, nic["network_interface_id"])["TagSet"]}
    assert json.loads(tags["guardduty:original-groups"]) == original  # records.py's shape: JSON in KEY, KEY:2...
    record_seq = [e["seq"] for e in entries if e["action"] == "CreateTags"
                  and e["params"].get("ResourceId.1") == nic["network_interface_id"]]
    first_move = min(e["seq"] for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute")
    assert record_seq and record_seq[0] < first_move
    # The conversion group allows everything, IPv4 and IPv6, both ways: the VPC has IPv6.
    conversion = security_group(demo, result["security_groups"][nic["vpc_id"]]["conversion"])
    for rules in (conversion["IpPermissions"], conversion["IpPermissionsEgress"]):
        cidrs = {r.get("CidrIp") or r.get("CidrIpv6") for p in rules if p["IpProtocol"] == "-1"
                 for r in p.get("IpRanges", []) + p.get("Ipv6Ranges", [])}
        assert cidrs == set(OPEN)
    tags = instance_tags(demo, "web-1")
    assert tags["guardduty:isolation"] == "isolated" and tags["guardduty:incident"] == "IR-7"
    assert tags["guardduty:isolated-at"].endswith("Z")


def test_three_enis_in_two_vpcs(demo):
    mark = demo.mark()
    result = isolate(demo, ["app-1"])
    entries = demo.journal(mark)
    assert_converted_then_isolated(demo, result, entries, "app-1")
    assert_isolation_group_closed(demo, result, entries)
    regional = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]
    assert set(result["security_groups"]) == {regional["vpcs"]["prod"], regional["vpcs"]["shared"]}
    # One conversion and one isolation group per VPC, never duplicated.
    created = [e for e in entries if e["action"] == "CreateSecurityGroup"]
    assert sorted((e["params"]["VpcId"], e["params"]["GroupName"]) for e in created) == sorted(
        (vpc, name) for vpc in set(result["security_groups"])
        for name in ("guardduty-isolation", "guardduty-isolation-conversion"))


def test_mixed_batch_describes_once_and_isolates_all(demo):
    names = ["web-1", "app-1", "bastion-1", "healthy-1"]
    mark = demo.mark()
    result = isolate(demo, names, max_concurrency=4)
    entries = demo.journal(mark)
    for name in names:
        assert_converted_then_isolated(demo, result, entries, name)
    assert_isolation_group_closed(demo, result, entries)
    calls = {}
    for entry in entries:
        calls[entry["action"]] = calls.get(entry["action"], 0) + 1
    # Describes per batch, not per host, and none again after the plan: the groups it creates are planned
    # from the rules AWS gives a new group, the tracked-paths step reads the batch's ENIs.
    assert calls["DescribeInstances"] == 1
    assert calls["DescribeNetworkInterfaces"] == 1
    assert calls["DescribeRouteTables"] == 1
    # 2: the groups by name, the conversion groups by tag (ENIs a killed run left there).
    assert calls["DescribeSecurityGroups"] == 2
    assert calls["DescribeVpcs"] == 1
    enis = sum(len(demo.instance(n)["enis"]) for n in names)
    assert calls["ModifyNetworkInterfaceAttribute"] == 2 * enis
    # Instances are tagged in one call; ENIs sharing the same original groups share a record call.
    assert sum(1 for e in entries if e["action"] == "CreateTags" and e["params"]["ResourceId.1"].startswith("i-")) == 1
    dwell = dwell_seconds(entries)
    assert len(dwell) == enis
    print(f"\nconversion dwell over {enis} ENIs: max {max(dwell):.3f}s mean {statistics.mean(dwell):.3f}s")


def test_second_run_writes_nothing(demo):
    isolate(demo, ["web-1", "app-1"], incident_id="IR-1")
    mark = demo.mark()
    result = isolate(demo, ["web-1", "app-1"], incident_id="IR-1")
    assert result["changed"] is False
    assert all(not r["changed"] and r["state"] == "isolated" for r in result["instances"].values())
    assert result["plan"] == []
    assert writes(demo.journal(mark)) == []


def test_check_mode_writes_nothing_and_predicts_the_plan(demo):
    mark = demo.mark()
    predicted = isolate(demo, ["web-1", "app-1"], check=True, diff=True)
    assert writes(demo.journal(mark)) == []
    assert predicted["changed"] is True
    nic = by_id(predicted)[demo.instance("web-1")["id"]]["network_interfaces"][0]
    assert nic["security_groups"] == ["(new) guardduty-isolation"]
    assert predicted["diff"]["before"][demo.instance("web-1")["id"]][nic["network_interface_id"]] == \
        nic["original_security_groups"]
    real = isolate(demo, ["web-1", "app-1"], diff=True)
    assert comparable(real["plan"]) == comparable(predicted["plan"])
    assert real["diff"]["before"] == predicted["diff"]["before"]
    # Once the groups exist, check mode predicts the group ids too: the same results as the real run.
    demo.reset("demo")
    isolate(demo, ["healthy-1"])
    predicted = isolate(demo, ["web-1", "bastion-1"], check=True, diff=True)  # both in prod, whose groups exist
    real = isolate(demo, ["web-1", "bastion-1"], diff=True)
    assert comparable(predicted["plan"]) == comparable(real["plan"])
    assert comparable(predicted["instances"]) == comparable(real["instances"])
    assert predicted["diff"] == real["diff"]


def comparable(value):
    """A plan or result without what differs between two runs by nature: timestamps and timings."""
    if isinstance(value, list):
        return [comparable(v) for v in value]
    if isinstance(value, dict):
        return {k: ("<time>" if k == "guardduty:isolated-at" else comparable(v)) for k, v in value.items()
                if k != "conversion_seconds"}
    return value


def test_check_mode_on_isolated_instance_predicts_no_change(demo):
    isolate(demo, ["web-1"])
    mark = demo.mark()
    result = isolate(demo, ["web-1"], check=True)
    assert result["changed"] is False and result["plan"] == []
    assert writes(demo.journal(mark)) == []


def test_member_account_instance(demo):
    mark = demo.mark()
    result = isolate(demo, ["worker-1", "worker-2"], account="111122223333")
    entries = demo.journal(mark)
    for name in ("worker-1", "worker-2"):
        assert_converted_then_isolated(demo, result, entries, name, account="111122223333")
    assert_isolation_group_closed(demo, result, entries, account="111122223333")
    assert {e["account"] for e in writes(entries)} == {"111122223333"}


def test_other_region_ipv6_instance(demo):
    mark = demo.mark()
    result = isolate(demo, ["api-1"], region="eu-west-1")
    entries = demo.journal(mark)
    assert_converted_then_isolated(demo, result, entries, "api-1", region="eu-west-1")
    assert_isolation_group_closed(demo, result, entries, region="eu-west-1")


def test_allowed_access_is_the_only_rule_and_open_cidr_is_refused(demo):
    mark = demo.mark()
    result = isolate(demo, ["web-1"], allowed_access=[{"cidr": "10.99.0.10/32", "port": 22},
                                                      {"cidr": "fd00:99::/64", "port": 22}])
    entries = demo.journal(mark)
    assert_isolation_group_closed(demo, result, entries, allowed=("10.99.0.10/32", "fd00:99::/64"))
    mark = demo.mark()
    refused = isolate(demo, ["app-1"], allowed_access=[{"cidr": "0.0.0.0/0", "port": 22}], expect_rc=(2,))
    assert refused["failed"] and "open to everyone" in refused["msg"]
    assert demo.journal(mark) == []


def test_sixteen_original_groups_are_recorded_and_restored(demo):
    ec2 = demo.client("ec2")
    regional = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]
    many = [ec2.create_security_group(GroupName=f"extra-{i}", Description="x", VpcId=regional["vpcs"]["prod"])["GroupId"]
            for i in range(16)]
    eni_id = demo.instance("web-1")["enis"][0]
    ec2.modify_network_interface_attribute(NetworkInterfaceId=eni_id, Groups=many)
    assert eni_groups(demo, eni_id) == many
    result = isolate(demo, ["web-1"])
    tags = {t["Key"]: t["Value"] for t in eni(demo, eni_id)["TagSet"]}
    assert all(len(v) <= 256 for v in tags.values())
    assert "guardduty:original-groups:2" in tags  # split over parts
    assert by_id(result)[demo.instance("web-1")["id"]]["network_interfaces"][0]["original_security_groups"] == many
    isolate(demo, ["web-1"], state="released")
    assert eni_groups(demo, eni_id) == many


def test_concurrent_runs_share_one_group_pair(demo):
    outcomes = []

    def run(name):
        outcomes.append(isolate(demo, [name]))

    threads = [threading.Thread(target=run, args=(n,)) for n in ("web-1", "bastion-1", "healthy-1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(outcomes) == 3 and all(o["changed"] and not o.get("failed") for o in outcomes)
    regional = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]
    groups = demo.client("ec2").describe_security_groups(Filters=[
        {"Name": "vpc-id", "Values": [regional["vpcs"]["prod"]]},
        {"Name": "group-name", "Values": ["guardduty-isolation", "guardduty-isolation-conversion"]}])["SecurityGroups"]
    assert len(groups) == 2
    isolation_id = next(g["GroupId"] for g in groups if g["GroupName"] == "guardduty-isolation")
    for name in ("web-1", "bastion-1", "healthy-1"):
        assert eni_groups(demo, demo.instance(name)["enis"][0]) == [isolation_id]
    isolation = security_group(demo, isolation_id)
    assert isolation["IpPermissions"] == [] and isolation["IpPermissionsEgress"] == []


# -- ENIs that cannot be changed -----------------------------------------------------------------
def test_requester_managed_eni_is_reported_not_skipped(demo):
    app = demo.instance("app-1")
    managed = app["enis"][2]
    before = eni_groups(demo, managed)
    demo.client("ec2").create_tags(Resources=[managed], Tags=[{"Key": "lab:requester-managed", "Value": "true"}])
    mark = demo.mark()
    result = isolate(demo, ["app-1"], expect_rc=(2,))
    entries = demo.journal(mark)
    item = by_id(result)[app["id"]]
    assert result["failed"] and managed in error_of(item) and "requester-managed" in error_of(item)
    nic = next(n for n in item["network_interfaces"] if n["network_interface_id"] == managed)
    assert "requester-managed" in nic["error"] and nic["security_groups"] == before
    assert moves(entries, managed) == [] and eni_groups(demo, managed) == before
    for other in app["enis"][:2]:
        assert [g for _, g in moves(entries, other)] == [[result["security_groups"][eni(demo, other)["VpcId"]][r]]
                                                         for r in ("conversion", "isolation")]


# -- faults ------------------------------------------------------------------------------------
def test_transient_error_on_isolation_move_is_retried(demo):
    first = isolate(demo, ["healthy-1"])  # creates the prod groups so the fault can target them
    isolation_id = next(iter(first["security_groups"].values()))["isolation"]
    demo.faults({"forced": [{"action": "ModifyNetworkInterfaceAttribute", "resource": isolation_id,
                             "code": "InternalError", "status": 500, "count": 1}]})
    mark = demo.mark()
    result = isolate(demo, ["web-1"])
    entries = demo.journal(mark)
    assert [e["outcome"] for e in entries if e["injected"]] == ["InternalError"]
    assert_converted_then_isolated(demo, result, entries, "web-1")


def test_failure_after_conversion_never_leaves_the_eni_open(demo):
    first = isolate(demo, ["healthy-1"])
    groups = next(iter(first["security_groups"].values()))
    eni_id = demo.instance("web-1")["enis"][0]
    original = eni_groups(demo, eni_id)
    demo.faults({"forced": [{"action": "ModifyNetworkInterfaceAttribute", "resource": groups["isolation"],
                             "code": "InvalidParameterValue", "status": 400, "count": 1}]})
    result = isolate(demo, ["web-1"], expect_rc=(2,))
    item = by_id(result)[demo.instance("web-1")["id"]]
    assert result["failed"] and item["state"] == "failed"
    assert eni_id in error_of(item) and "ec2:ModifyNetworkInterfaceAttribute" in error_of(item)
    assert "InvalidParameterValue" in error_of(item)
    assert eni_groups(demo, eni_id) == original  # back on its own groups, not on the open conversion group
    assert "guardduty:isolation" not in instance_tags(demo, "web-1")
    demo.faults({})
    mark = demo.mark()
    again = isolate(demo, ["web-1"])
    assert_converted_then_isolated(demo, again, demo.journal(mark), "web-1")
    assert by_id(again)[demo.instance("web-1")["id"]]["network_interfaces"][0]["original_security_groups"] == original


def test_permission_denied_names_the_action(demo):
    demo.faults({"forced": [{"action": "ModifyNetworkInterfaceAttribute", "code": "UnauthorizedOperation",
                             "status": 403}]})
    eni_id = demo.instance("web-1")["enis"][0]
    original = eni_groups(demo, eni_id)
    result = isolate(demo, ["web-1"], expect_rc=(2,))
    item = by_id(result)[demo.instance("web-1")["id"]]
    assert "ec2:ModifyNetworkInterfaceAttribute" in error_of(item) and "UnauthorizedOperation" in error_of(item)
    assert eni_groups(demo, eni_id) == original
    demo.faults({"forced": [{"action": "DescribeInstances", "code": "UnauthorizedOperation", "status": 403}]})
    mark = demo.mark()
    denied = isolate(demo, ["web-1"], expect_rc=(2,))
    assert "ec2:DescribeInstances" in denied["msg"] and "UnauthorizedOperation" in denied["msg"]
    assert writes(demo.journal(mark)) == []


# -- bad input ---------------------------------------------------------------------------------
def test_bad_ids_are_reported_and_change_nothing(demo):
    ec2 = demo.client("ec2")
    ec2.terminate_instances(InstanceIds=[demo.instance("healthy-1")["id"]])
    ids = ["i-123", "i-0123456789abcdef0", demo.instance("api-1")["id"], demo.instance("healthy-1")["id"]]
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": ids}, expect_rc=(2,))
    assert result["failed"]
    errors = {i: error_of(r) for i, r in result["instances"].items()}
    assert sorted(errors) == sorted(ids)  # a dict by instance id (Ansible's JSON keeps no key order)
    assert "malformed instance id" in errors["i-123"]
    assert "not found" in errors["i-0123456789abcdef0"]
    assert "not found" in errors[demo.instance("api-1")["id"]] and "us-east-1" in errors[demo.instance("api-1")["id"]]
    assert "terminated" in errors[demo.instance("healthy-1")["id"]]
    assert writes(demo.journal(mark)) == []
    empty = demo.run_module(MODULE, {"instance_ids": []}, expect_rc=(2,))
    assert empty["failed"] and "empty" in empty["msg"]


def test_one_bad_id_does_not_stop_the_others(demo):
    ids = [demo.instance("web-1")["id"], "i-0123456789abcdef0"]
    result = demo.run_module(MODULE, {"instance_ids": ids}, expect_rc=(2,))
    states = [result["instances"][i]["state"] for i in ids]
    assert states == ["isolated", "failed"]


# -- release -----------------------------------------------------------------------------------
def test_release_restores_exactly_and_is_idempotent(demo):
    names = ["web-1", "app-1"]
    originals = {e: eni_groups(demo, e) for n in names for e in demo.instance(n)["enis"]}
    isolate(demo, names, incident_id="IR-9")
    mark = demo.mark()
    released = isolate(demo, names, state="released")
    assert released["changed"] is True
    for eni_id, groups in originals.items():
        assert eni_groups(demo, eni_id) == groups
        assert not any(t["Key"].startswith("guardduty:") for t in eni(demo, eni_id)["TagSet"])
    restores = moves(demo.journal(mark))
    assert sorted(restores) == sorted(originals.items())
    for name in names:
        tags = instance_tags(demo, name)
        assert tags["guardduty:isolation"] == "released"
        assert "guardduty:incident" not in tags and "guardduty:isolated-at" not in tags
    mark = demo.mark()
    again = isolate(demo, names, state="released")
    assert again["changed"] is False and writes(demo.journal(mark)) == []
    # and it can be isolated again
    assert isolate(demo, ["web-1"])["changed"] is True


def test_release_check_mode(demo):
    isolate(demo, ["app-1"])
    mark = demo.mark()
    predicted = isolate(demo, ["app-1"], state="released", check=True)
    assert writes(demo.journal(mark)) == []
    real = isolate(demo, ["app-1"], state="released")
    assert comparable(predicted["plan"]) == comparable(real["plan"])
    assert comparable(predicted["instances"]) == comparable(real["instances"])


def test_release_without_record_is_a_clear_error(demo):
    mark = demo.mark()
    result = isolate(demo, ["healthy-1"], state="released", expect_rc=(2,))
    assert result["failed"] and "no isolation record" in error_of(by_id(result)[demo.instance("healthy-1")["id"]])
    assert writes(demo.journal(mark)) == []


def test_release_after_a_crash_between_record_and_moves(demo):
    """The record alone (written, then the run died) is enough to release: the groups are restored as-is."""
    eni_id = demo.instance("web-1")["enis"][0]
    original = eni_groups(demo, eni_id)
    demo.faults({"forced": [{"action": "ModifyNetworkInterfaceAttribute", "code": "UnauthorizedOperation",
                             "status": 403}]})
    isolate(demo, ["web-1"], expect_rc=(2,))
    demo.faults({})
    assert any(t["Key"] == "guardduty:original-groups" for t in eni(demo, eni_id)["TagSet"])
    result = isolate(demo, ["web-1"], state="released")
    assert eni_groups(demo, eni_id) == original
    assert by_id(result)[demo.instance("web-1")["id"]]["state"] == "released"


# -- IAM -----------------------------------------------------------------------------------------
def test_documented_iam_policy_is_enough(demo):
    """With the lab enforcing IAM, a user holding only docs/iam/ec2_isolation.json isolates and releases."""
    import json
    import pathlib

    policy = (pathlib.Path(__file__).resolve().parents[2] / "docs/iam/ec2_isolation.json").read_text()
    iam = demo.client("iam")
    iam.create_user(UserName="isolator")
    iam.put_user_policy(UserName="isolator", PolicyName="ec2_isolation", PolicyDocument=policy)
    key = iam.create_access_key(UserName="isolator")["AccessKey"]
    creds = {"access_key": key["AccessKeyId"], "secret_key": key["SecretAccessKey"]}
    demo.iam_enforcement(True)
    try:
        mark = demo.mark()
        result = isolate(demo, ["app-1"], **creds)
        assert_converted_then_isolated(demo, result, demo.journal(mark), "app-1")
        released = isolate(demo, ["app-1"], state="released", **creds)
        assert all(r["state"] == "released" for r in released["instances"].values())
        assert not [e for e in demo.journal(mark) if e["status"] == 403], json.dumps(demo.journal(mark))[:2000]
        # Without one of its actions, the module says which one is missing.
        narrowed = json.loads(policy)
        for statement in narrowed["Statement"]:
            if statement["Action"] == "ec2:ModifyNetworkInterfaceAttribute":
                statement["Action"] = "ec2:DescribeInstances"
        iam.put_user_policy(UserName="isolator", PolicyName="ec2_isolation", PolicyDocument=json.dumps(narrowed))
        denied = isolate(demo, ["web-1"], expect_rc=(2,), **creds)
        assert "ec2:ModifyNetworkInterfaceAttribute" in error_of(by_id(denied)[demo.instance("web-1")["id"]])
        assert eni_groups(demo, demo.instance("web-1")["enis"][0]) != [result["security_groups"][
            eni(demo, demo.instance("web-1")["enis"][0])["VpcId"]]["isolation"]]
    finally:
        demo.iam_enforcement(False)


def test_batches_over_accounts_and_regions_in_one_run(demo):
    """`batches` (as batch_stage hands them over an organization): one module run works on each account/region
    batch with its own credentials and region, exactly as a run per batch would; a failing batch fails alone; the
    batches' secrets are never in the result."""
    member = demo.credentials("111122223333")
    stranger = demo.instance("web-1")["id"]  # an instance of 123456789012/us-east-1: not in the member account
    web_groups = eni_groups(demo, demo.instance("web-1")["enis"][0])
    mark = demo.mark()
    result = demo.run_module(MODULE, {"batches": [
        {"instance_ids": [demo.instance("worker-1")["id"]], "region": "us-east-1",
         "access_key": member["aws_access_key_id"], "secret_key": member["aws_secret_access_key"],
         "session_token": member["aws_session_token"]},
        {"instance_ids": [demo.instance("api-1")["id"]], "region": "eu-west-1"},
        {"instance_ids": [stranger], "region": "us-east-1",
         "access_key": member["aws_access_key_id"], "secret_key": member["aws_secret_access_key"],
         "session_token": member["aws_session_token"]},
    ]})
    entries = demo.journal(mark)
    member_batch, admin_batch, stranger_batch = result["batches"]
    assert result["changed"] and not result.get("failed"), result
    assert_converted_then_isolated(demo, member_batch, entries, "worker-1", account="111122223333")
    assert_converted_then_isolated(demo, admin_batch, entries, "api-1", region="eu-west-1")
    # each batch's calls went to its own account and region, with its own credentials
    member_eni = demo.instance("worker-1")["enis"][0]
    api_eni = demo.instance("api-1")["enis"][0]
    by_eni = {e["params"]["NetworkInterfaceId"]: e for e in entries if e["action"] == "ModifyNetworkInterfaceAttribute"}
    assert (by_eni[member_eni]["account"], by_eni[member_eni]["region"]) == ("111122223333", "us-east-1")
    assert (by_eni[api_eni]["account"], by_eni[api_eni]["region"]) == ("123456789012", "eu-west-1")
    # the stranger batch failed by itself, naming its instance, and changed nothing of web-1
    assert stranger_batch["failed"] and not stranger_batch["changed"], stranger_batch
    assert f"{stranger}: DescribeInstances: instance not found in this account" in stranger_batch["msg"]
    assert not [e for e in writes(entries) if stranger in json.dumps(e["params"])]
    assert eni_groups(demo, demo.instance("web-1")["enis"][0]) == web_groups
    shown = json.dumps(result)
    assert member["aws_secret_access_key"] not in shown and member["aws_session_token"] not in shown
