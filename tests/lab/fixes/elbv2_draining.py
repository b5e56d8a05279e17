"""ELBv2 target deregistration as AWS does it: the target drains before it is gone.

AWS: after DeregisterTargets, the target stays in DescribeTargetHealth (with no Targets filter) in state
`draining` (reason Target.DeregistrationInProgress) for the target group's deregistration delay
(attribute deregistration_delay.timeout_seconds, 300 s by default); RegisterTargets during that time
registers it again. moto 5.2.5 forgets the target at once, so it never shows `draining`.
The delay runs on wall-clock time.
"""

import time

from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup

_original = {}


def _deregister(self, targets):
    _original["deregister"](self, targets)
    draining = self.__dict__.setdefault("_lab_draining", {})
    for target in targets:
        draining[target["Id"]] = (self.deregistered_targets[target["Id"]], time.monotonic())


def _register(self, targets):
    _original["register"](self, targets)
    draining = self.__dict__.setdefault("_lab_draining", {})
    for target in targets:
        draining.pop(target["Id"], None)


def _still_draining(group):
    delay = float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
    now = time.monotonic()
    draining = group.__dict__.setdefault("_lab_draining", {})
    for target_id in [i for i, (_, since) in draining.items() if now - since >= delay]:
        del draining[target_id]
    return draining


def _draining_status(group, target):
    return FakeHealthStatus(target["Id"], target.get("Port", group.port), group.health_check_port, "draining",
                            "Target.DeregistrationInProgress", "Target deregistration is in progress")


def _describe_target_health(self, target_group_arn, targets):
    statuses = _original["health"](self, target_group_arn, targets)
    group = self.target_groups[target_group_arn]
    draining = _still_draining(group)
    if not targets:
        return statuses + [_draining_status(group, target) for target_id, (target, _) in draining.items()
                           if target_id not in group.targets]
    return [_draining_status(group, draining[s.instance_id][0]) if s.instance_id in draining and s.status == "unused" else s
            for s in statuses]


def apply():
    _original.setdefault("deregister", FakeTargetGroup.deregister)
    _original.setdefault("register", FakeTargetGroup.register)
    _original.setdefault("health", ELBv2Backend.describe_target_health)
    FakeTargetGroup.deregister = _deregister
    FakeTargetGroup.register = _register
    ELBv2Backend.describe_target_health = _describe_target_health
