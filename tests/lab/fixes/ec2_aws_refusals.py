"""Calls AWS refuses and moto accepts: the lab refuses them as AWS does.

- ModifyInstanceAttribute DisableApiTermination=true on a Spot instance. The botocore ec2 model
  (ModifyInstanceAttributeRequest.DisableApiTermination) and the EC2 User Guide ("Change instance
  termination protection": "You can't enable termination protection for Spot Instances") say so; AWS
  answers `UnsupportedOperation: Modifying 'disableApiTermination' is not supported for spot instances.`
  (quoted in cloud-custodian/cloud-custodian#2083). Stop protection likewise ("Enable stop protection for
  your EC2 instances": "You can't enable stop protection for Spot Instances"), answered the same way.
- GetConsoleOutput Latest=true on an instance type that is not built on the Nitro System: the API
  reference (GetConsoleOutput) says the latest output "is supported on instance types that use the Nitro
  hypervisor". AWS does not document the error code; the lab answers `UnsupportedOperation`, EC2's code for
  an operation the instance does not support (EC2 API error codes). The Xen families are those missing from
  "Instances built on the AWS Nitro System" (Amazon EC2 Instance Types guide).
- CreateSecurityGroup GroupName over 255 characters or starting with `sg-` (botocore ec2 model,
  CreateSecurityGroupRequest.GroupName: "Up to 255 characters in length. Can't start with sg-."):
  `InvalidParameterValue`.
- AuthorizeSecurityGroupIngress/Egress with an ICMP type or code out of -1..255, or a code without a type
  (botocore ec2 model, IpPermission.FromPort/ToPort: "If the start port is -1 (all ICMP types), then the end
  port must be -1"): `InvalidParameterValue: ICMP code (65535) out of range` as AWS words it (quoted in
  terraform-aws-modules/terraform-aws-security-group#7).
"""

from moto.ec2.exceptions import EC2ClientError
from moto.ec2.responses.general import General
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.responses.security_groups import SecurityGroups

# Families on the Xen hypervisor: the previous generations absent from "Instances built on the AWS Nitro
# System"; i3.metal and p3dn.24xlarge are Nitro. (Kept here, apart from the module's own list: the lab
# states AWS's behaviour, it does not reuse the code under test.)
XEN_FAMILIES = {"c1", "c3", "c4", "cc2", "cg1", "cr1", "d2", "f1", "g2", "g3", "g3s", "h1", "hi1", "hs1", "i2", "i3",
                "m1", "m2", "m3", "m4", "p2", "p3", "r3", "r4", "t1", "t2", "x1", "x1e"}
NITRO_EXCEPTIONS = {"i3.metal", "p3dn.24xlarge"}


def is_xen_instance_type(instance_type):
    return instance_type not in NITRO_EXCEPTIONS and str(instance_type).split(".")[0] in XEN_FAMILIES


class UnsupportedOperation(EC2ClientError):
    def __init__(self, message):
        super().__init__("UnsupportedOperation", message)


class InvalidParameterValue(EC2ClientError):
    def __init__(self, message):
        super().__init__("InvalidParameterValue", message)


def _true(value):
    return str(value).lower() == "true"


def _modify_instance_attribute(self):
    instance_id = self._get_param("InstanceId")
    for parameter, attribute in (("DisableApiTermination.Value", "disableApiTermination"),
                                 ("DisableApiStop.Value", "disableApiStop")):
        if _true(self._get_param(parameter)):
            instance = self.ec2_backend.get_instance(instance_id)
            if getattr(instance, "lifecycle", None) == "spot":
                raise UnsupportedOperation(f"Modifying '{attribute}' is not supported for spot instances.")
    return _original_modify_instance_attribute(self)


def _get_console_output(self):
    if _true(self._get_param("Latest")):
        instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
        if is_xen_instance_type(instance.instance_type):
            raise UnsupportedOperation(f"The latest console output is not supported for instance type {instance.instance_type}: "
                                       "it is supported on instance types built on the Nitro System.")
    return _original_get_console_output(self)


def _create_security_group(self):
    name = self._get_param("GroupName") or ""
    if len(name) > 255:
        raise InvalidParameterValue(f"Value ({name}) for parameter GroupName is invalid. Length exceeds maximum of 255.")
    if name.lower().startswith("sg-"):
        raise InvalidParameterValue(f"Value ({name}) for parameter GroupName is invalid. Group names may not be in the format sg-*.")
    return _original_create_security_group(self)


def _check_icmp(self):
    for rule in self._process_rules_from_querystring():
        if str(rule.get("ip_protocol")).lower() not in ("icmp", "1", "icmpv6", "58"):
            continue
        icmp_type = int(rule["from_port"]) if rule.get("from_port") is not None else -1
        icmp_code = int(rule["to_port"]) if rule.get("to_port") is not None else -1
        if not -1 <= icmp_type <= 255:
            raise InvalidParameterValue(f"ICMP type ({icmp_type}) out of range")
        if not -1 <= icmp_code <= 255:
            raise InvalidParameterValue(f"ICMP code ({icmp_code}) out of range")
        if icmp_type == -1 and icmp_code != -1:
            raise InvalidParameterValue(f"ICMP code ({icmp_code}) out of range: with ICMP type -1 the code must be -1")


def _authorize_ingress(self):
    _check_icmp(self)
    return _original_authorize_ingress(self)


def _authorize_egress(self):
    _check_icmp(self)
    return _original_authorize_egress(self)


_original_modify_instance_attribute = None
_original_get_console_output = None
_original_create_security_group = None
_original_authorize_ingress = None
_original_authorize_egress = None


def apply():
    global _original_modify_instance_attribute, _original_get_console_output, _original_create_security_group
    global _original_authorize_ingress, _original_authorize_egress
    _original_modify_instance_attribute = InstanceResponse.modify_instance_attribute
    _original_get_console_output = General.get_console_output
    _original_create_security_group = SecurityGroups.create_security_group
    _original_authorize_ingress = SecurityGroups.authorize_security_group_ingress
    _original_authorize_egress = SecurityGroups.authorize_security_group_egress
    InstanceResponse.modify_instance_attribute = _modify_instance_attribute
    General.get_console_output = _get_console_output
    SecurityGroups.create_security_group = _create_security_group
    SecurityGroups.authorize_security_group_ingress = _authorize_ingress
    SecurityGroups.authorize_security_group_egress = _authorize_egress
