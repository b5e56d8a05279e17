"""RunInstances from a launch template that defines network interfaces, as AWS does it.

- AWS refuses an instance-level SubnetId (or SecurityGroupIds) when network interfaces are given, whether in
  the request or in the launch template: InvalidParameterCombination, "Network interfaces and an
  instance-level subnet ID may not be specified on the same request" (EC2 API reference, RunInstances,
  SubnetId: "If you specify a network interface, you must specify any subnets as part of the network
  interface"; the same for SecurityGroupIds). moto 5.2.5 checks only the request's own NetworkInterfaces.
- AWS launches the template's network interfaces when the request names none; moto ignores them.
"""

import copy

from moto.ec2.exceptions import InvalidParameterCombination
from moto.ec2.models.instances import InstanceBackend

SUBNET_MESSAGE = "Network interfaces and an instance-level subnet ID may not be specified on the same request"
GROUPS_MESSAGE = "Network interfaces and an instance-level security groups may not be specified on the same request"

_original = {}


def _run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
    if "launch_config" in kwargs:
        # An Auto Scaling group's own launch (moto's autoscaling passes launch_config): AWS's group places the
        # subnet on the template's interface itself, so the RunInstances API's rule does not apply here.
        return _original["run"](self, image_id, count, user_data, security_group_names, **kwargs)
    template_nics = []
    if kwargs.get("launch_template"):
        template_nics = self._get_template_from_args(kwargs["launch_template"]).data.get("NetworkInterfaces") or []
    if template_nics or kwargs.get("nics"):
        if kwargs.get("subnet_id"):
            raise InvalidParameterCombination(msg=SUBNET_MESSAGE)
        if kwargs.get("security_group_ids") or security_group_names:
            raise InvalidParameterCombination(msg=GROUPS_MESSAGE)
    if template_nics and not kwargs.get("nics"):
        kwargs["nics"] = copy.deepcopy(template_nics)
    return _original["run"](self, image_id, count, user_data, security_group_names, **kwargs)


def apply():
    _original.setdefault("run", InstanceBackend.run_instances)
    InstanceBackend.run_instances = _run_instances
