"""Records an attacker can forge (issue 14, item 1): the four attacks, each refused or defused.

Anyone with ec2:CreateTags in the member account can write the guardduty:* tags. The record needed to undo a
change is kept in the incident store (a per-test directory, see tests/lab/pytest_plugin.py); the tags are only
a hint, cross-checked. Evidence: AWS state read back with boto3, and the lab's journal.
"""

import json

ISOLATION = "cloudsec.guardduty.ec2_isolation"
CREDENTIALS = "cloudsec.guardduty.ec2_instance_credentials"
DETACH = "cloudsec.guardduty.ec2_instance_detach"
GROUPS_TAG = "guardduty:original-groups"
CREDENTIALS_TAG = "guardduty:credentials-record"
DETACH_TAG = "guardduty:detach-record"
ACCOUNT = "123456789012"


def ec2(lab):
    return lab.client("ec2")


def eni_groups(lab, eni_id):
    eni = ec2(lab).describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return [g["GroupId"] for g in eni["Groups"]]


def eni_tags(lab, eni_id):
    eni = ec2(lab).describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    return {t["Key"]: t["Value"] for t in eni.get("TagSet") or []}


def group_named(lab, name, vpc_id=None):
    filters = [{"Name": "group-name", "Values": [name]}] + ([{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else [])
    return ec2(lab).describe_security_groups(Filters=filters)["SecurityGroups"][0]["GroupId"]


def vpc_of(lab, eni_id):
    return ec2(lab).describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]["VpcId"]


def store_record(lab, instance_id):
    path = f"{lab.incident_store}/records/{ACCOUNT}/us-east-1/{instance_id}.json"
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["records"]


def writes_on(entries, action, resource=None):
    return [e for e in entries if e["action"] == action and e["outcome"] == "ok"
            and (resource is None or resource in json.dumps(e["params"]))]


def forge(lab, resource, key, data):
    """Write `data` in the tags as the modules shape a record: JSON cut into 256-character values."""
    text = json.dumps(data, separators=(",", ":"), sort_keys=True)
    parts = [text[i:i + 256] for i in range(0, len(text), 256)]
    ec2(lab).create_tags(Resources=[resource], Tags=[{"Key": key if n == 0 else f"{key}:{n + 1}", "Value": part}
                                                     for n, part in enumerate(parts)])


def tag_record(lab, instance_id, key):
    """A record as the instance's tags hold it (JSON in KEY, KEY:2...)."""
    described = ec2(lab).describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    tags = {t["Key"]: t["Value"] for t in described.get("Tags") or []}
    parts = [key] + sorted((k for k in tags if k.startswith(key + ":")), key=lambda k: int(k.rsplit(":", 1)[1]))
    return json.loads("".join(tags[k] for k in parts))


def text_of(result):
    parts = (result.get("instances") or {}).values()
    return " | ".join([str(result.get("msg") or "")] + [str((i.get("error") or {}).get("message") or "") for i in parts
                                                          if isinstance(i, dict)])


# -- 1. an ENI tagged before isolation with an open management group --------------------------------
def test_isolate_records_true_groups_despite_a_tag_forged_before(demo):
    bastion = demo.instance("bastion-1")
    eni_id = bastion["enis"][0]
    true_groups = eni_groups(demo, eni_id)
    mgmt = group_named(demo, "mgmt", vpc_of(demo, eni_id))
    # An "open management group": SSH from anywhere.
    open_group = ec2(demo).create_security_group(GroupName="open-mgmt", Description="attacker",
                                                 VpcId=vpc_of(demo, eni_id))["GroupId"]
    ec2(demo).authorize_security_group_ingress(GroupId=open_group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert open_group not in true_groups and mgmt in true_groups
    ec2(demo).create_tags(Resources=[eni_id], Tags=[{"Key": GROUPS_TAG, "Value": "1"},
                                                    {"Key": f"{GROUPS_TAG}:1", "Value": open_group}])

    result = demo.run_module(ISOLATION, {"instance_ids": [bastion["id"]], "incident_id": "IR-FORGE"})
    item = next(iter(result["instances"].values()))
    assert item["state"] == "isolated", item
    assert item["network_interfaces"][0]["original_security_groups"] == true_groups
    assert any(eni_id in w and GROUPS_TAG in w and "ignored" in w for w in item["warnings"]), item["warnings"]
    assert store_record(demo, bastion["id"])["network"]["enis"][eni_id]["groups"] == true_groups
    # The forged tag is overwritten with the true record (the earlier shape's part tag gone).
    tags = eni_tags(demo, eni_id)
    assert json.loads(tags[GROUPS_TAG]) == true_groups and f"{GROUPS_TAG}:1" not in tags

    mark = demo.mark()
    released = demo.run_module(ISOLATION, {"instance_ids": [bastion["id"]], "state": "released"})
    assert next(iter(released["instances"].values()))["state"] == "released", released
    assert eni_groups(demo, eni_id) == true_groups
    assert not any(open_group in json.dumps(e["params"]) for e in writes_on(demo.journal(mark), "ModifyNetworkInterfaceAttribute"))


# -- 2. a record rewritten after isolation to name the conversion group -----------------------------
def test_release_refuses_a_record_naming_the_conversion_group(demo):
    app = demo.instance("app-1")
    first, second = app["enis"][0], app["enis"][1]
    result = demo.run_module(ISOLATION, {"instance_ids": [app["id"]]})
    vpc = vpc_of(demo, first)
    conversion = result["security_groups"][vpc]["conversion"]
    isolation = result["security_groups"][vpc]["isolation"]
    # Rewritten in the counted shape every version reads (a count, then comma-separated ids).
    ec2(demo).create_tags(Resources=[first], Tags=[{"Key": GROUPS_TAG, "Value": "1"},
                                                   {"Key": f"{GROUPS_TAG}:1", "Value": conversion}])

    mark = demo.mark()
    refused = demo.run_module(ISOLATION, {"instance_ids": [app["id"]], "state": "released"}, expect_rc=(2,))
    entries = demo.journal(mark)
    item = next(iter(refused["instances"].values()))
    assert item["state"] == "failed" and item["changed"] is False
    assert f"{first}: tag {GROUPS_TAG} differs from the incident store's record" in item["error"]["message"], item["error"]
    # Nothing of the instance changed: no ENI moved (not even the one whose record is intact), no tag touched.
    assert not writes_on(entries, "ModifyNetworkInterfaceAttribute")
    assert not [e for e in writes_on(entries, "DeleteTags") + writes_on(entries, "CreateTags")]
    assert eni_groups(demo, first) == [isolation] and eni_groups(demo, second) == [isolation]

    # The store itself naming the conversion group (a store written by hand): refused by the group's id and role.
    record = store_record(demo, app["id"])
    record["network"]["enis"][first]["groups"] = [conversion]
    path = f"{demo.incident_store}/records/{ACCOUNT}/us-east-1/{app['id']}.json"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"version": 1, "account_id": ACCOUNT, "region": "us-east-1", "instance_id": app["id"],
                   "records": record}, handle)
    mark = demo.mark()
    refused = demo.run_module(ISOLATION, {"instance_ids": [app["id"]], "state": "released"}, expect_rc=(2,))
    assert f"{first}: the record names {conversion}, the conversion group" in next(iter(refused["instances"].values()))["error"]["message"]
    assert not writes_on(demo.journal(mark), "ModifyNetworkInterfaceAttribute")
    assert eni_groups(demo, first) == [isolation]


def test_release_refuses_a_tag_record_the_store_does_not_know(demo):
    """Records of an earlier version (tags only): refused by name unless trust_tag_records acknowledges them,
    and even then never a group of another VPC."""
    web = demo.instance("web-1")
    eni_id = web["enis"][0]
    true_groups = eni_groups(demo, eni_id)
    demo.run_module(ISOLATION, {"instance_ids": [web["id"]]})
    demo.new_incident_store()  # as if isolated by the earlier version: the tags are all there is
    mark = demo.mark()
    refused = demo.run_module(ISOLATION, {"instance_ids": [web["id"]], "state": "released"}, expect_rc=(2,))
    assert "the incident store does not know" in next(iter(refused["instances"].values()))["error"]["message"]
    assert "trust_tag_records" in next(iter(refused["instances"].values()))["error"]["message"]
    assert not writes_on(demo.journal(mark), "ModifyNetworkInterfaceAttribute")

    other_vpc_group = group_named(demo, "backup")  # a group of the shared VPC
    assert vpc_of(demo, eni_id) != ec2(demo).describe_security_groups(GroupIds=[other_vpc_group])["SecurityGroups"][0]["VpcId"]
    saved = eni_tags(demo, eni_id)[GROUPS_TAG]
    ec2(demo).create_tags(Resources=[eni_id], Tags=[{"Key": GROUPS_TAG, "Value": json.dumps([other_vpc_group])}])
    refused = demo.run_module(ISOLATION, {"instance_ids": [web["id"]], "state": "released", "trust_tag_records": True},
                              expect_rc=(2,))
    assert f"the record names {other_vpc_group} of" in next(iter(refused["instances"].values()))["error"]["message"]

    ec2(demo).create_tags(Resources=[eni_id], Tags=[{"Key": GROUPS_TAG, "Value": saved}])
    released = demo.run_module(ISOLATION, {"instance_ids": [web["id"]], "state": "released", "trust_tag_records": True})
    assert next(iter(released["instances"].values()))["state"] == "released"
    assert eni_groups(demo, eni_id) == true_groups


# -- 3. a forged credentials record ----------------------------------------------------------------
def admin_profile(lab):
    """An attacker's dream: an instance profile of an administrator role, and a decoy role to take the deny."""
    iam = lab.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                                "Principal": {"Service": "ec2.amazonaws.com"}}]})
    iam.create_role(RoleName="admin", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="decoy", AssumeRolePolicyDocument=trust)
    profile = iam.create_instance_profile(InstanceProfileName="admin-profile")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="admin-profile", RoleName="admin")
    return profile


def associated_profile(lab, instance_id):
    found = ec2(lab).describe_iam_instance_profile_associations(
        Filters=[{"Name": "instance-id", "Values": [instance_id]}, {"Name": "state", "Values": ["associated"]}])
    return [a["IamInstanceProfile"]["Arn"] for a in found["IamInstanceProfileAssociations"]]


def quarantined(lab, role):
    iam = lab.client("iam")
    if "GuardDutyQuarantine" not in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        return ""
    document = iam.get_role_policy(RoleName=role, PolicyName="GuardDutyQuarantine")["PolicyDocument"]
    return document if isinstance(document, str) else json.dumps(document)


def forged_credentials(profile_arn):
    return json.dumps({"a": "iip-assoc-0123456789abcdef0", "m": "disassociate", "p": profile_arn, "q": None,
                       "r": "decoy", "t": "2020-01-01T00:00:00Z"}, separators=(",", ":"), sort_keys=True)


def test_cut_and_release_ignore_a_forged_credentials_record(demo):
    web = demo.instance("web-1")
    admin = admin_profile(demo)
    real = associated_profile(demo, web["id"])
    assert len(real) == 1 and real[0].endswith("/web-role")
    ec2(demo).create_tags(Resources=[web["id"]], Tags=[{"Key": CREDENTIALS_TAG, "Value": forged_credentials(admin)}])

    result = demo.run_module(CREDENTIALS, {"instance_ids": [web["id"]]})
    assert not result.get("failed"), result
    # The deny goes on the real role (read from AWS), not on the decoy the tag names.
    assert web["id"] in quarantined(demo, "web-role") and not quarantined(demo, "decoy")
    assert associated_profile(demo, web["id"]) == []
    assert store_record(demo, web["id"])["credentials"]["p"] == real[0]
    assert store_record(demo, web["id"])["credentials"]["r"] == "web-role"

    mark = demo.mark()
    released = demo.run_module(CREDENTIALS, {"instance_ids": [web["id"]], "state": "released"})
    assert not released.get("failed"), released
    assert associated_profile(demo, web["id"]) == real
    assert not [e for e in demo.journal(mark) if "admin-profile" in json.dumps(e["params"])]


def test_release_refuses_a_credentials_record_rewritten_after_the_cut(demo):
    web = demo.instance("web-1")
    admin = admin_profile(demo)
    demo.run_module(CREDENTIALS, {"instance_ids": [web["id"]]})
    ec2(demo).create_tags(Resources=[web["id"]], Tags=[{"Key": CREDENTIALS_TAG, "Value": forged_credentials(admin)}])
    mark = demo.mark()
    refused = demo.run_module(CREDENTIALS, {"instance_ids": [web["id"]], "state": "released"}, expect_rc=(2,))
    assert f"{web['id']}: tag {CREDENTIALS_TAG} differs from the incident store's record" in text_of(refused)
    entries = demo.journal(mark)
    assert not [e for e in entries if e["action"] in ("AssociateIamInstanceProfile", "ReplaceIamInstanceProfileAssociation",
                                                      "PutRolePolicy", "DeleteRolePolicy", "DeleteTags")]
    assert associated_profile(demo, web["id"]) == [] and web["id"] in quarantined(demo, "web-role")


# -- 4. a forged detach record ---------------------------------------------------------------------
def production_target_group(lab, vpc_id):
    """A target group the instance was never in."""
    return lab.client("elbv2").create_target_group(Name="prod-payments", Protocol="HTTP", Port=8443, VpcId=vpc_id,
                                                   TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]


def targets_of(lab, arn):
    return [d["Target"]["Id"] for d in lab.client("elbv2").describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]


def registrations(entries, arn):
    return [e for e in entries if e["action"] == "RegisterTargets" and arn in json.dumps(e["params"])]


def test_detach_release_never_registers_where_the_store_says_it_was_not(demo):
    web = demo.instance("web-1")
    prod_tg = production_target_group(demo, vpc_of(demo, web["enis"][0]))
    forged = {"a": None, "e": [], "t": [[prod_tg, 8443], [prod_tg, 8443, "i-0fedcba9876543210"]]}
    forge(demo, web["id"], DETACH_TAG, forged)

    web_tg = demo.client("elbv2").describe_target_groups(Names=["web-tg"])["TargetGroups"][0]["TargetGroupArn"]
    result = demo.run_module(DETACH, {"instance_ids": [web["id"]]})
    assert not result.get("failed"), result
    recorded = tag_record(demo, web["id"], DETACH_TAG)  # the forged tag is overwritten with the truth
    assert recorded["a"][0] == "web-asg" and [t[0] for t in recorded["t"]] == [web_tg]

    mark = demo.mark()
    released = demo.run_module(DETACH, {"instance_ids": [web["id"]], "state": "released"})
    assert not released.get("failed"), released
    entries = demo.journal(mark)
    assert not registrations(entries, prod_tg) and targets_of(demo, prod_tg) == []
    assert web["id"] in targets_of(demo, web_tg)


def test_detach_release_refuses_a_forged_record_and_a_foreign_target_id(demo):
    web = demo.instance("web-1")
    prod_tg = production_target_group(demo, vpc_of(demo, web["enis"][0]))
    demo.run_module(DETACH, {"instance_ids": [web["id"]]})
    recorded = tag_record(demo, web["id"], DETACH_TAG)
    forged = dict(recorded, t=recorded["t"] + [[prod_tg, 8443, "i-0fedcba9876543210"]])
    forge(demo, web["id"], DETACH_TAG, forged)

    mark = demo.mark()
    refused = demo.run_module(DETACH, {"instance_ids": [web["id"]], "state": "released"}, expect_rc=(2,))
    assert f"{web['id']}: tag {DETACH_TAG} differs from the incident store's record" in text_of(refused) + json.dumps(refused)
    entries = demo.journal(mark)
    assert not [e for e in entries if e["action"] in ("RegisterTargets", "AttachInstances", "DeleteTags")]
    assert targets_of(demo, prod_tg) == [] and store_record(demo, web["id"])["detach"] == recorded

    # Without a store record (an earlier version's), trust_tag_records still never sets a foreign target id.
    demo.new_incident_store()
    mark = demo.mark()
    refused = demo.run_module(DETACH, {"instance_ids": [web["id"]], "state": "released", "trust_tag_records": True},
                              expect_rc=(2,))
    assert "i-0fedcba9876543210, neither the instance nor one of its addresses" in json.dumps(refused)
    assert not registrations(demo.journal(mark), prod_tg) and targets_of(demo, prod_tg) == []
