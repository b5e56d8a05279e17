"""DescribeVpcEndpoints filters as AWS documents them.

AWS (EC2 API Reference, DescribeVpcEndpoints, Filter.N): `vpc-endpoint-id` - the ID of the endpoint;
`vpc-id` - the ID of the VPC. An id that is not one of the account's endpoints simply matches nothing,
where VpcEndpointId.N would fail the call (InvalidVpcEndpointId.NotFound). moto 5.2.5 raises
FilterNotImplementedError for both.
"""

from moto.ec2.models.vpcs import VPCEndPoint

_original = {}


def _get_filter_value(self, filter_name, method_name=None):
    if filter_name == "vpc-endpoint-id":
        return self.id
    if filter_name == "vpc-id":
        return self.vpc_id
    return _original["get_filter_value"](self, filter_name, method_name)


def apply():
    _original.setdefault("get_filter_value", VPCEndPoint.get_filter_value)
    VPCEndPoint.get_filter_value = _get_filter_value
