"""guardduty_find_source (step 3, find the source) against the lab: recommendations from the demo's findings, and the exposing rules revoked and restored."""

MODULE = "cloudsec.guardduty.guardduty_find_source"


def ingress(lab, group_id, account="123456789012"):
    rules = lab.client("ec2", account=account).describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    return sorted((r["IpProtocol"], r["FromPort"], r["ToPort"], r.get("CidrIpv4") or r.get("CidrIpv6"))
                  for r in rules if not r["IsEgress"])


def test_fetched_findings_give_recommendations_per_instance(demo):
    web, app = demo.instance("web-1")["id"], demo.instance("app-1")["id"]
    web_group = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]["web"]
    result = demo.run_module(MODULE, {"instance_ids": [web, app]})
    assert result["changed"] is False
    kinds = {r["finding_type"]: r["kind"] for r in result["instances"][web]["recommendations"]}
    assert kinds == {"UnauthorizedAccess:EC2/SSHBruteForce": "close_exposure", "Backdoor:EC2/C&CActivity.B": "rebuild"}
    exposing = result["instances"][web]["exposing_rules"]
    assert sorted((r["GroupId"], r["FromPort"], r.get("CidrIpv4") or r.get("CidrIpv6")) for r in exposing) == [
        (web_group, 22, "0.0.0.0/0"), (web_group, 22, "::/0")]  # not 443, not the app group's 8080
    assert [r["kind"] for r in result["instances"][app]["recommendations"]] == ["rebuild"]


def test_credential_exfiltration_recommends_cutting_credentials(demo):
    worker = demo.instance("worker-1")["id"]
    result = demo.run_module(MODULE, {"instance_ids": [worker]}, account="111122223333")
    kinds = sorted(r["kind"] for r in result["instances"][worker]["recommendations"])
    assert kinds == ["close_exposure", "cut_credentials"]
    cut = [r for r in result["instances"][worker]["recommendations"] if r["kind"] == "cut_credentials"][0]
    assert cut["module"] == "cloudsec.guardduty.ec2_instance_credentials"


def test_apply_network_revokes_recorded_rules_and_release_restores_them(demo):
    web = demo.instance("web-1")["id"]
    web_group = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]["web"]
    before = ingress(demo, web_group)
    findings = demo.client("guardduty").get_findings(
        DetectorId=demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["detector_id"],
        FindingIds=demo.client("guardduty").list_findings(
            DetectorId=demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["detector_id"])["FindingIds"])["Findings"]
    ssh = [f for f in findings if f["Type"] == "UnauthorizedAccess:EC2/SSHBruteForce"
           and f["Resource"]["InstanceDetails"]["InstanceId"] == web]
    mark = demo.mark()
    checked = demo.run_module(MODULE, {"instance_ids": [web], "findings": ssh, "apply_network": True}, check=True)
    assert checked["changed"] is True and ingress(demo, web_group) == before
    assert [e for e in demo.journal(since=mark) if e["action"] in ("CreateTags", "RevokeSecurityGroupIngress")] == []

    mark = demo.mark()
    result = demo.run_module(MODULE, {"instance_ids": [web], "findings": ssh, "apply_network": True})
    assert result["changed"] is True
    assert [e["action"] for e in demo.journal(since=mark) if e["action"] in ("CreateTags", "RevokeSecurityGroupIngress")] == [
        "CreateTags", "RevokeSecurityGroupIngress"]
    assert ingress(demo, web_group) == [("tcp", 443, 443, "0.0.0.0/0")]
    tags = demo.client("ec2").describe_security_groups(GroupIds=[web_group])["SecurityGroups"][0].get("Tags", [])
    assert len([t for t in tags if t["Key"].startswith("guardduty:revoked-rule:")]) == 2

    assert demo.run_module(MODULE, {"instance_ids": [web], "findings": ssh, "apply_network": True})["changed"] is False

    released = demo.run_module(MODULE, {"instance_ids": [web], "state": "released"})
    assert released["changed"] is True
    assert ingress(demo, web_group) == before
    tags = demo.client("ec2").describe_security_groups(GroupIds=[web_group])["SecurityGroups"][0].get("Tags", [])
    assert [t for t in tags if t["Key"].startswith("guardduty:revoked-rule:")] == []


def test_isolated_instance_is_triaged_on_its_original_groups(demo):
    web = demo.instance("web-1")["id"]
    web_group = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["security_groups"]["web"]
    demo.run_module("cloudsec.guardduty.ec2_isolation", {"instance_ids": [web], "incident_id": "INC-T"})
    result = demo.run_module(MODULE, {"instance_ids": [web]})
    assert result["instances"][web]["isolated"] is True
    assert {r["GroupId"] for r in result["instances"][web]["exposing_rules"]} == {web_group}


def test_every_instance_finding_of_the_demo_gets_specific_advice(demo):
    """No finding type staged in the demo falls through to the generic "investigate" advice."""
    kinds = {}
    for account, region, names in (("123456789012", "us-east-1", ["web-1", "app-1", "bastion-1"]),
                                   ("123456789012", "eu-west-1", ["api-1"]), ("111122223333", "us-east-1", ["worker-1"])):
        ids = [demo.instance(name)["id"] for name in names]
        result = demo.run_module(MODULE, {"instance_ids": ids, "include_archived": True}, account=account, region=region)
        for instance_id in ids:
            for recommendation in result["instances"][instance_id]["recommendations"]:
                kinds[recommendation["finding_type"]] = recommendation["kind"]
    assert len(kinds) >= 6
    assert "investigate" not in kinds.values(), kinds


def test_the_module_s_first_name_still_works(demo):
    """guardduty_triage, the module's first name, redirects (meta/runtime.yml) to the same module."""
    web = demo.instance("web-1")["id"]
    result = demo.run_module("cloudsec.guardduty.guardduty_triage", {"instance_ids": [web]})
    assert result["changed"] is False and web in result["instances"], result
    assert result["instances"][web]["recommendations"], result["instances"][web]
