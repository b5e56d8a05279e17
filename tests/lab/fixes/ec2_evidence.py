"""EC2 evidence and protection: EBS snapshot lifecycle, and instance attributes as AWS keeps them.

- Snapshots: AWS creates a snapshot `pending` and completes it later; CreateSnapshots answers with each
  snapshot's State. moto completes every snapshot at once and leaves State out of CreateSnapshots.
- ModifyInstanceAttribute: AWS changes exactly the attribute given. moto 5.2 has no handler for
  InstanceInitiatedShutdownBehavior.Value and falls through to its security-group handler, which
  replaces the instance's groups with an empty list; it also answers 500 for an unmapped device.
- DescribeInstanceAttribute(blockDeviceMapping): AWS returns the instance's BlockDeviceMappings;
  moto returns nothing.
"""

import time

from moto.core.responses import ActionResult, EmptyResult
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.elastic_block_store import Snapshot
from moto.ec2.responses.instances import InstanceResponse

# How long a new snapshot stays pending (wall seconds): long enough for a module to see `pending`
# and wait, short enough for tests.
SNAPSHOT_PENDING_SECONDS = 2.0


class InvalidInstanceAttributeValue(EC2ClientError):
    def __init__(self, message):
        super().__init__("InvalidInstanceAttributeValue", message)


class MissingParameter(EC2ClientError):
    def __init__(self, message):
        super().__init__("MissingParameter", message)


# -- snapshots ----------------------------------------------------------------------------------

def _snapshot_status_get(self):
    status = self.__dict__.get("_lab_status", "completed")
    created = self.__dict__.get("_lab_created")
    # The snapshots behind moto's built-in AMIs are complete from the start.
    if self.__dict__.get("from_ami") is None and status == "completed" and created is not None \
            and time.time() < created + SNAPSHOT_PENDING_SECONDS:
        return "pending"
    return status


def _snapshot_status_set(self, value):
    self.__dict__["_lab_status"] = value
    self.__dict__.setdefault("_lab_created", time.time())


def _snapshot_progress(self):
    if _snapshot_status_get(self) != "pending":
        return "100%"
    elapsed = time.time() - self.__dict__.get("_lab_created", 0)
    return f"{min(99, int(100 * elapsed / SNAPSHOT_PENDING_SECONDS))}%"


# -- instance attributes ------------------------------------------------------------------------

def _as_bool(value):
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)


def _modify_instance_attribute(self):
    instance_id = self._get_param("InstanceId")
    shutdown = self._get_param("InstanceInitiatedShutdownBehavior.Value")
    if shutdown is not None:
        if shutdown not in ("stop", "terminate"):
            raise InvalidInstanceAttributeValue(f"Value ({shutdown}) for parameter instanceInitiatedShutdownBehavior is invalid.")
        self.ec2_backend.get_instance(instance_id)
        self.error_on_dryrun()
        self.ec2_backend.modify_instance_attribute(instance_id, "instance_initiated_shutdown_behavior", shutdown)
        return EmptyResult()
    mappings = self._get_param("BlockDeviceMappings", [])
    if mappings:
        instance = self.ec2_backend.get_instance(instance_id)
        for mapping in mappings:
            if mapping.get("DeviceName") not in instance.block_device_mapping:
                raise InvalidInstanceAttributeValue(f"No device is currently mapped at {mapping.get('DeviceName')}")
        self.error_on_dryrun()
        for mapping in mappings:
            value = (mapping.get("Ebs") or {}).get("DeleteOnTermination")
            if value is not None:
                instance.block_device_mapping[mapping["DeviceName"]].delete_on_termination = _as_bool(value)
        return EmptyResult()
    if all(key in ("Action", "Version", "InstanceId", "DryRun") for key in self.querystring):
        # AWS: a request naming no attribute is rejected, it never empties the security groups.
        raise MissingParameter("The request must contain the parameter attribute")
    return _original_modify_instance_attribute(self)


def _describe_instance_attribute(self):
    if self._get_param("Attribute") != "blockDeviceMapping":
        return _original_describe_instance_attribute(self)
    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))
    mappings = []
    for device_name, device in sorted(instance.block_device_mapping.items()):
        mappings.append({"DeviceName": device_name,
                         "Ebs": {"AttachTime": device.attach_time, "DeleteOnTermination": bool(device.delete_on_termination),
                                 "Status": "attached", "VolumeId": device.volume_id}})
    return ActionResult({"InstanceId": instance.id, "BlockDeviceMappings": mappings})


_original_modify_instance_attribute = None
_original_describe_instance_attribute = None


def apply():
    global _original_modify_instance_attribute, _original_describe_instance_attribute
    _original_modify_instance_attribute = InstanceResponse.modify_instance_attribute
    _original_describe_instance_attribute = InstanceResponse.describe_instance_attribute
    Snapshot.status = property(_snapshot_status_get, _snapshot_status_set)
    Snapshot.state = property(_snapshot_status_get)
    Snapshot.progress = property(_snapshot_progress)
    InstanceResponse.modify_instance_attribute = _modify_instance_attribute
    InstanceResponse.describe_instance_attribute = _describe_instance_attribute
