"""AWS: DescribeVpcEndpoints accepts the filters vpc-endpoint-id and vpc-id (EC2 API Reference); an id that
is not the account's matches nothing instead of failing the call."""


def test_vpc_endpoints_filtered_by_id_and_vpc(demo):
    ec2 = demo.client("ec2")
    eni = demo.instance("web-1")["enis"][0]
    described = ec2.describe_network_interfaces(NetworkInterfaceIds=[eni])["NetworkInterfaces"][0]
    endpoint = ec2.create_vpc_endpoint(VpcId=described["VpcId"], VpcEndpointType="GatewayLoadBalancer",
                                       ServiceName="com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0",
                                       SubnetIds=[described["SubnetId"]])["VpcEndpoint"]["VpcEndpointId"]
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-endpoint-id", "Values": [endpoint, "vpce-0notmine"]}])
    assert [(e["VpcEndpointId"], e["VpcEndpointType"]) for e in found["VpcEndpoints"]] == [(endpoint, "GatewayLoadBalancer")]
    by_vpc = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [described["VpcId"]]}])["VpcEndpoints"]
    assert endpoint in [e["VpcEndpointId"] for e in by_vpc]
