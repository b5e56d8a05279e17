"""AWS's behaviour for new network ACLs and public address owners, as the lab must show it."""


def test_new_custom_network_acl_denies_everything_ipv4_and_ipv6(demo):
    ec2 = demo.client("ec2")
    vpcs = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["vpcs"]
    prod = ec2.create_network_acl(VpcId=vpcs["prod"])["NetworkAcl"]  # prod has an IPv6 block
    entries = {(e["RuleNumber"], e["Egress"], e["RuleAction"], e.get("CidrBlock"), e.get("Ipv6CidrBlock"))
               for e in prod["Entries"]}
    assert entries == {(32767, False, "deny", "0.0.0.0/0", None), (32767, True, "deny", "0.0.0.0/0", None),
                       (32768, False, "deny", None, "::/0"), (32768, True, "deny", None, "::/0")}
    shared = ec2.create_network_acl(VpcId=vpcs["shared"])["NetworkAcl"]  # IPv4 only
    assert {(e["RuleNumber"], e["Egress"]) for e in shared["Entries"]} == {(32767, False), (32767, True)}


def test_ip_owner_is_amazon_for_an_auto_assigned_address_and_the_account_for_an_elastic_ip(demo):
    ec2 = demo.client("ec2")
    subnets = demo.resources["accounts"]["123456789012"]["regions"]["us-east-1"]["subnets"]
    ec2.modify_subnet_attribute(SubnetId=subnets["app-b"], MapPublicIpOnLaunch={"Value": True})
    auto = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnets["app-b"])["Instances"][0]
    described = ec2.describe_instances(InstanceIds=[auto["InstanceId"], demo.instance("web-1")["id"]])
    owners = {}
    for reservation in described["Reservations"]:
        for instance in reservation["Instances"]:
            association = instance["NetworkInterfaces"][0]["PrivateIpAddresses"][0]["Association"]
            owners[instance["InstanceId"]] = association["IpOwnerId"]
    assert owners == {auto["InstanceId"]: "amazon", demo.instance("web-1")["id"]: "123456789012"}
