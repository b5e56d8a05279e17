"""The inventory's group guardduty_conversion_stuck: hosts with a network interface left on a conversion
group (a run of ec2_isolation killed between its two moves), found with one DescribeSecurityGroups call per
account and region with hosts; off with conversion_check: false."""

from tests.integration_lab.reliability_lab import MODULE
from tests.integration_lab.reliability_lab import containment_groups
from tests.integration_lab.test_inventory_guardduty import ADMIN
from tests.integration_lab.test_inventory_guardduty import BASE
from tests.integration_lab.test_inventory_guardduty import groups_of
from tests.integration_lab.test_inventory_guardduty import hosts_of
from tests.integration_lab.test_inventory_guardduty import run_inventory


def test_hosts_with_an_eni_on_a_conversion_group_are_grouped_by_name(demo, tmp_path):
    app, web = demo.instance("app-1"), demo.instance("web-1")
    isolated = demo.run_module(MODULE, {"instance_ids": [app["id"], web["id"]]})
    assert not isolated.get("failed"), isolated.get("msg")
    conversion = containment_groups(demo)
    # The state a controller killed between app-1's two moves leaves: its second ENI on the conversion group.
    stuck = app["enis"][1]
    vpc = demo.client("ec2").describe_network_interfaces(NetworkInterfaceIds=[stuck])["NetworkInterfaces"][0]["VpcId"]
    demo.client("ec2").modify_network_interface_attribute(NetworkInterfaceId=stuck,
                                                          Groups=[conversion[vpc]["conversion"]])
    mark = demo.mark()
    proc, data = run_inventory(demo, tmp_path, BASE)
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data, "guardduty_conversion_stuck") == {app["id"]}
    assert "guardduty_conversion_stuck" in groups_of(data, app["id"])
    assert data["_meta"]["hostvars"][app["id"]]["guardduty_conversion_stuck_enis"] == [stuck]
    assert data["_meta"]["hostvars"][web["id"]]["guardduty_conversion_stuck_enis"] == []
    # The cost: one DescribeSecurityGroups per account and region that has hosts, nothing per host.
    described = [e for e in demo.journal(mark) if e["action"] == "DescribeSecurityGroups"]
    sources = {(e["account"], e["region"]) for e in demo.journal(mark) if e["action"] == "DescribeInstances"}
    assert sorted((e["account"], e["region"]) for e in described) == sorted(sources)
    assert (ADMIN, "us-east-1") in sources

    # A group merely tagged as a conversion group, without the all-traffic rules, does not count.
    ec2 = demo.client("ec2")
    ec2.revoke_security_group_ingress(GroupId=conversion[vpc]["conversion"], IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    _, data = run_inventory(demo, tmp_path, BASE)
    assert hosts_of(data, "guardduty_conversion_stuck") == set()

    mark = demo.mark()
    proc, data = run_inventory(demo, tmp_path, BASE + "conversion_check: false\n")
    assert proc.returncode == 0, proc.stderr
    assert hosts_of(data, "guardduty_conversion_stuck") == set()
    assert not [e for e in demo.journal(mark) if e["action"] == "DescribeSecurityGroups"]
