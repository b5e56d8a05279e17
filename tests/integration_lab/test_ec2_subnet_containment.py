"""ec2_subnet_containment against the lab: network ACL associations as EC2 reports them, and the journal."""

import json
import pathlib
import stat

MODULE = "cloudsec.guardduty.ec2_subnet_containment"
WRITES = ("CreateTags", "DeleteTags", "CreateNetworkAcl", "ReplaceNetworkAclAssociation", "DeleteNetworkAclEntry")


def writes(lab, since):
    return [e for e in lab.journal(since=since, service="ec2") if e["action"] in WRITES]


def acl_of(lab, subnet_id, account="123456789012"):
    ec2 = lab.client("ec2", account=account)
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["NetworkAcls"]
    assert len(acls) == 1
    return acls[0]


def stored_nacl(lab, subnet_id, account="123456789012", region="us-east-1"):
    """The incident store's record of the subnet's original network ACL (None when it has none)."""
    path = pathlib.Path(lab.incident_store) / "records" / account / region / f"{subnet_id}.json"
    if not path.exists():
        return None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["subnet_id"] == subnet_id
    return document["records"]["nacl"]


def subnet_tags(lab, subnet_id, account="123456789012"):
    subnet = lab.client("ec2", account=account).describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]
    return {t["Key"]: t["Value"] for t in subnet.get("Tags", [])}


def test_refuses_without_acknowledgement_and_lists_what_else_is_cut_off(demo):
    web = demo.instance("web-1")["id"]
    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web]}, expect_rc=(2,))
    assert "acknowledge_subnet_impact" in result["msg"]
    app_a = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    # bastion-1, healthy-1 and app-1's primary ENI share web-1's subnet.
    assert any(demo.instance("bastion-1")["id"] in e for e in result["affected"][app_a])
    assert writes(demo, mark) == []


def test_contain_and_release_with_acknowledgement(demo):
    app = demo.instance("app-1")
    subnets = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]
    mine = [subnets["app-a"], subnets["app-b"], subnets["shared-a"]]  # app-1's ENIs: two VPCs
    before = {s: acl_of(demo, s)["NetworkAclId"] for s in mine}
    args = {"instance_ids": [app["id"]], "acknowledge_subnet_impact": True}

    mark = demo.mark()
    planned = demo.run_module(MODULE, args, check=True)
    assert planned["changed"] is True and writes(demo, mark) == []

    mark = demo.mark()
    result = demo.run_module(MODULE, args, diff=True)
    assert result["changed"] is True
    actions = [e["action"] for e in writes(demo, mark)]
    assert actions.count("CreateNetworkAcl") == 2  # one per VPC
    assert actions.count("ReplaceNetworkAclAssociation") == 3
    for subnet_id in mine:
        acl = acl_of(demo, subnet_id)
        assert {t["Key"]: t["Value"] for t in acl["Tags"]}["guardduty:containment"] == "true"
        # AWS's default deny rules only: everything in and out is denied.
        assert {(e["RuleAction"], e["Egress"]) for e in acl["Entries"]} == {("deny", False), ("deny", True)}
        assert subnet_tags(demo, subnet_id)["guardduty:nacl-record"] == before[subnet_id]
        assert stored_nacl(demo, subnet_id) == before[subnet_id]  # the authority, out of the member account's reach
    prod_acl = acl_of(demo, subnets["app-a"])
    assert {e.get("Ipv6CidrBlock") for e in prod_acl["Entries"]} >= {"::/0"}  # the VPC has IPv6

    mark = demo.mark()
    assert demo.run_module(MODULE, args)["changed"] is False
    assert writes(demo, mark) == []

    released = demo.run_module(MODULE, {"instance_ids": [app["id"]], "state": "released"})
    assert released["changed"] is True
    for subnet_id in mine:
        assert acl_of(demo, subnet_id)["NetworkAclId"] == before[subnet_id]
        assert "guardduty:nacl-record" not in subnet_tags(demo, subnet_id)
        assert stored_nacl(demo, subnet_id) is None
    mark = demo.mark()
    assert demo.run_module(MODULE, {"instance_ids": [app["id"]], "state": "released"})["changed"] is False
    assert writes(demo, mark) == []


def test_permission_error_on_one_subnet_does_not_hide_the_other_instance(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")
    subnets = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]
    original_shared = acl_of(demo, subnets["shared-a"])
    association = original_shared["Associations"]
    shared_assoc = [a for a in association if a["SubnetId"] == subnets["shared-a"]][0]["NetworkAclAssociationId"]
    demo.faults({"forced": [{"action": "ReplaceNetworkAclAssociation", "resource": shared_assoc,
                             "code": "UnauthorizedOperation", "status": 403}]})
    result = demo.run_module(MODULE, {"instance_ids": [app["id"], web], "acknowledge_subnet_impact": True}, expect_rc=(2,))
    error = result["instances"][app["id"]]["error"]
    assert error["action"] == "ReplaceNetworkAclAssociation" and error["code"] == "UnauthorizedOperation"
    assert subnets["shared-a"] in error["message"]
    assert "error" not in result["instances"][web] and result["instances"][web]["changed"] is True
    assert acl_of(demo, subnets["app-a"])["NetworkAclId"] == result["containment_acls"][acl_of(demo, subnets["app-a"])["VpcId"]]
    # The failed subnet keeps its network ACL.
    assert acl_of(demo, subnets["shared-a"])["NetworkAclId"] == original_shared["NetworkAclId"]


def test_a_forged_record_tag_never_chooses_the_acl_a_released_subnet_gets(demo):
    """The member account can rewrite guardduty:nacl-record. Release refuses a tag that differs from the incident
    store, changing nothing of that subnet; with the tag deleted, the store's record is applied. A tag the store
    never held (an earlier version's) is refused unless trust_tag_records."""
    web = demo.instance("web-1")["id"]
    subnet_id = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]["app-a"]
    ec2 = demo.client("ec2")
    original = acl_of(demo, subnet_id)["NetworkAclId"]
    vpc = ec2.describe_subnets(SubnetIds=[subnet_id])["Subnets"][0]["VpcId"]
    attacker_acl = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
    args = {"instance_ids": [web], "acknowledge_subnet_impact": True}
    assert demo.run_module(MODULE, args)["changed"] is True
    contained = acl_of(demo, subnet_id)["NetworkAclId"]

    ec2.create_tags(Resources=[subnet_id], Tags=[{"Key": "guardduty:nacl-record", "Value": attacker_acl}])
    mark = demo.mark()
    refused = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"}, expect_rc=(2,))
    error = refused["instances"][web]["error"]
    assert error["action"] == "CheckNaclRecord" and error["code"] == "RecordRefused"
    assert subnet_id in error["message"] and "differs from the incident store's record" in error["message"]
    assert writes(demo, mark) == [] and acl_of(demo, subnet_id)["NetworkAclId"] == contained
    assert stored_nacl(demo, subnet_id) == original

    # Containing again rewrites the tag from the store, even after someone put the subnet on their ACL.
    association = [a for a in acl_of(demo, subnet_id)["Associations"] if a["SubnetId"] == subnet_id][0]
    ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"], NetworkAclId=attacker_acl)
    again = demo.run_module(MODULE, args)
    assert any("differs from the incident store's record" in w for w in again["instances"][web]["warnings"])
    assert subnet_tags(demo, subnet_id)["guardduty:nacl-record"] == original == stored_nacl(demo, subnet_id)
    assert acl_of(demo, subnet_id)["NetworkAclId"] == contained

    ec2.delete_tags(Resources=[subnet_id], Tags=[{"Key": "guardduty:nacl-record"}])
    released = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})
    assert acl_of(demo, subnet_id)["NetworkAclId"] == original and stored_nacl(demo, subnet_id) is None
    assert any("missing; the incident store's record is applied" in w for w in released["instances"][web]["warnings"])

    # An earlier version's record: the tag alone. Refused by default, applied with trust_tag_records.
    association = [a for a in acl_of(demo, subnet_id)["Associations"] if a["SubnetId"] == subnet_id][0]
    ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"], NetworkAclId=contained)
    ec2.create_tags(Resources=[subnet_id], Tags=[{"Key": "guardduty:nacl-record", "Value": original}])
    mark = demo.mark()
    legacy = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"}, expect_rc=(2,))
    assert "trust_tag_records" in legacy["instances"][web]["error"]["message"] and writes(demo, mark) == []
    trusted = demo.run_module(MODULE, {"instance_ids": [web], "state": "released", "trust_tag_records": True})
    assert trusted["changed"] is True and acl_of(demo, subnet_id)["NetworkAclId"] == original
    assert "guardduty:nacl-record" not in subnet_tags(demo, subnet_id)
