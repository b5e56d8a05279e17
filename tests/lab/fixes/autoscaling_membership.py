"""Auto Scaling: standby and attach as AWS does them.

- EnterStandby accepts only InService instances, and with ShouldDecrementDesiredCapacity=true refuses to take
  the desired capacity below the group's minimum size (ValidationError). moto 5.2.5 accepts any state and
  decrements again and again.
- ExitStandby accepts only Standby instances (ValidationError); moto raises the desired capacity for any.
- AttachInstances raises the desired capacity by the number of instances attached, and fails when that goes
  above the maximum size (ValidationError). moto 5.2.5 sets it to the count of instances already in the group
  plus the new ones, so Standby instances (not part of the desired capacity) are counted twice.
- DetachInstances accepts only InService or Standby instances of the group (ValidationError).
"""

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend, InstanceState

_original = {}


def _states(group, instance_ids):
    found = {s.instance.id: s for s in group.instance_states if s.instance.id in instance_ids}
    for instance_id in instance_ids:
        if instance_id not in found:
            raise ValidationError(f"The instance {instance_id} is not part of Auto Scaling group {group.name}.")
    return found


def _enter_standby(self, group_name, instance_ids, should_decrement):
    group = self.autoscaling_groups[group_name]
    for instance_id, state in _states(group, instance_ids).items():
        if state.lifecycle_state != "InService":
            raise ValidationError(f"The instance {instance_id} is not in InService.")
    if should_decrement and group.desired_capacity - len(instance_ids) < group.min_size:
        raise ValidationError(f"AutoScalingGroup {group_name} has min-size={group.min_size}, max-size={group.max_size}, and "
                              f"desired-size={group.desired_capacity}. To place into standby {len(instance_ids)} instances, "
                              "please update the AutoScalingGroup sizes appropriately.")
    return _original["enter"](self, group_name, instance_ids, should_decrement)


def _exit_standby(self, group_name, instance_ids):
    group = self.autoscaling_groups[group_name]
    for instance_id, state in _states(group, instance_ids).items():
        if state.lifecycle_state != "Standby":
            raise ValidationError(f"The instance {instance_id} is not in Standby.")
    if group.desired_capacity + len(instance_ids) > group.max_size:
        raise ValidationError(f"AutoScalingGroup {group_name} has max-size={group.max_size}: taking {len(instance_ids)} "
                              "instances out of standby would exceed it.")
    return _original["exit"](self, group_name, instance_ids)


def _detach_instances(self, group_name, instance_ids, should_decrement):
    group = self.autoscaling_groups[group_name]
    for instance_id, state in _states(group, instance_ids).items():
        if state.lifecycle_state not in ("InService", "Standby"):
            raise ValidationError(f"The instance {instance_id} is not in InService or Standby.")
    return _original["detach"](self, group_name, instance_ids, should_decrement)


def _attach_instances(self, group_name, instance_ids):
    group = self.autoscaling_groups[group_name]
    for other in self.autoscaling_groups.values():
        for state in other.instance_states:
            if state.instance.id in instance_ids:
                raise ValidationError(f"The instance {state.instance.id} is already part of Auto Scaling group {other.name}.")
    if group.desired_capacity + len(instance_ids) > group.max_size:
        raise ValidationError(f"Desired capacity:{group.desired_capacity + len(instance_ids)} must be between the specified "
                              f"min size:{group.min_size} and max size:{group.max_size}")
    for instance_id in instance_ids:
        instance = self.ec2_backend.get_instance(instance_id)
        if instance.state != "running":
            raise ValidationError(f"Instance {instance_id} is not in correct state. Instance should be in running state.")
    group.desired_capacity += len(instance_ids)
    for instance_id in instance_ids:
        instance = self.ec2_backend.get_instance(instance_id)
        self.ec2_backend.create_tags([instance.id], {"aws:autoscaling:groupName": group.name})
        group.instance_states.append(InstanceState(instance, protected_from_scale_in=group.new_instances_protected_from_scale_in,
                                                   autoscaling_group=group))
    self.update_attached_elbs(group.name)
    self.update_attached_target_groups(group.name)


def apply():
    _original.setdefault("enter", AutoScalingBackend.enter_standby_instances)
    _original.setdefault("exit", AutoScalingBackend.exit_standby_instances)
    _original.setdefault("detach", AutoScalingBackend.detach_instances)
    AutoScalingBackend.enter_standby_instances = _enter_standby
    AutoScalingBackend.exit_standby_instances = _exit_standby
    AutoScalingBackend.detach_instances = _detach_instances
    AutoScalingBackend.attach_instances = _attach_instances
