# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Protection: keep a compromised instance and its disks from being deleted, and undo it exactly.

Protected means: termination protection on, stop protection on when asked, the OS shutting down to
`stop` (not `terminate`), and no EBS volume deleted on termination. Before changing anything the
values found are recorded in instance tags (the protection record), so release restores them.

Planning is pure (`current_protection`, `read_record`, `plan_protect`, `plan_release`): it returns a
list of (action, parameters) calls; `apply_calls` makes them, in order.
"""


from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import records

RECORD_TAG = "guardduty:protection-record"
ATTRIBUTES = ("disableApiTermination", "disableApiStop", "instanceInitiatedShutdownBehavior")


def current_protection(instance, attributes):
    """The protection values of one instance: DescribeInstances' document plus its DescribeInstanceAttribute answers."""
    dot = {}
    for mapping in instance.get("BlockDeviceMappings") or []:
        if (mapping.get("Ebs") or {}).get("VolumeId"):
            dot[mapping["DeviceName"]] = bool(mapping["Ebs"].get("DeleteOnTermination"))
    return {
        "termination_protection": bool(attributes["DisableApiTermination"]["Value"]),
        "stop_protection": bool(attributes["DisableApiStop"]["Value"]),
        "shutdown_behavior": attributes["InstanceInitiatedShutdownBehavior"]["Value"],
        "delete_on_termination": dot,
    }


# -- the record ---------------------------------------------------------------------------------
# Compact JSON: {"t": 0/1, "s": 0/1, "b": "stop"/"terminate", "d": [devices that had DeleteOnTermination
# true, without "/dev/"]}. Only the devices to restore are listed, so even many volumes fit; a record
# longer than one tag value continues in guardduty:protection-record:2, :3, ...

def _short_device(device):
    return device[5:] if device.startswith("/dev/") else device


def record_data(record):
    """The record as kept (in the incident store, and in the tag): compact."""
    return {"t": int(record["termination_protection"]), "s": int(record["stop_protection"]),
            "b": record["shutdown_behavior"], "d": sorted(_short_device(d) for d in record["delete_on_termination"])}


def encode_record(record):
    """{tag key: tag value} holding the record (records.py's shape)."""
    return records.encode(RECORD_TAG, record_data(record))


def record_from_data(data, devices):
    """The record from its compact data; `devices` (the instance's device names) give the short names back."""
    by_short = {_short_device(d): d for d in devices}
    return {"termination_protection": bool(data["t"]), "stop_protection": bool(data["s"]),
            "shutdown_behavior": str(data["b"]),
            "delete_on_termination": sorted(by_short.get(d, "/dev/" + d) for d in data["d"])}


def record_tag_keys(tags):
    return records.keys(tags, RECORD_TAG)


def read_record(tags, devices):
    """The record in the instance's tags, or None. Raises ValueError when it cannot be read.

    `devices` are the instance's current device names: recorded short names are matched back to them.
    """
    keys = record_tag_keys(tags)
    try:
        data = records.decode(tags, RECORD_TAG)
        return None if data is None else record_from_data(data, devices)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable protection record in tags {', '.join(keys)}: {exc}") from None


# What AWS does not allow, from DescribeInstances: "You can't enable termination protection for Spot Instances"
# (botocore ec2 model, ModifyInstanceAttributeRequest.DisableApiTermination; EC2 User Guide, "Change instance
# termination protection"); "You can't enable stop protection for instance store-backed instances" nor "for
# Spot Instances" (EC2 User Guide, "Enable stop protection"). AWS answers UnsupportedOperation: such a call is
# not made, and the result says why.
def unsupported_protection(instance):
    """{attribute: why AWS does not allow turning it on} for one instance (DescribeInstances' document)."""
    unsupported = {}
    if instance.get("InstanceLifecycle") == "spot":
        unsupported["termination_protection"] = ("skipped: AWS does not allow termination protection on Spot Instances; "
                                                 "the instance can still be terminated through the API")
        unsupported["stop_protection"] = "skipped: AWS does not allow stop protection on Spot Instances"
    elif instance.get("RootDeviceType") == "instance-store":
        unsupported["stop_protection"] = "skipped: AWS does not allow stop protection on instance store-backed instances"
    return unsupported


def _modify(instance_id, **kwargs):
    return ("ModifyInstanceAttribute", dict(InstanceId=instance_id, **kwargs))


def plan_protect(instance_id, current, record, stop_protection, record_tags=None, unsupported=None):
    """(calls, record_after, predicted): record first, then one ModifyInstanceAttribute per attribute to change.

    `record_tags`: the instance's tags now; given, the record tag is rewritten whenever it does not hold the
    record kept (a forged or stale tag is replaced). The attributes in `unsupported` (unsupported_protection)
    are left as they are: AWS refuses them.
    """
    unsupported = unsupported or {}
    wanted_dot = {d: False for d in current["delete_on_termination"]}
    if record is None:
        new_record = {"termination_protection": current["termination_protection"],
                      "stop_protection": current["stop_protection"],
                      "shutdown_behavior": current["shutdown_behavior"],
                      "delete_on_termination": sorted(d for d, v in current["delete_on_termination"].items() if v)}
    else:
        # The record keeps the values from before the first protection; a volume attached since then
        # with DeleteOnTermination true is added to it before it is changed.
        added = [d for d, v in current["delete_on_termination"].items() if v and d not in record["delete_on_termination"]]
        new_record = dict(record, delete_on_termination=sorted(record["delete_on_termination"] + added))
    calls = []
    if record_tags is not None:
        calls += records.tag_calls(instance_id, RECORD_TAG, record_data(new_record), record_tags)
    elif record is None or new_record != record:
        calls.append(("CreateTags", {"Resources": [instance_id],
                                     "Tags": [{"Key": k, "Value": v} for k, v in encode_record(new_record).items()]}))
    changed_dot = sorted(d for d, v in current["delete_on_termination"].items() if v)
    if changed_dot:
        calls.append(_modify(instance_id, BlockDeviceMappings=[{"DeviceName": d, "Ebs": {"DeleteOnTermination": False}}
                                                               for d in changed_dot]))
    if current["shutdown_behavior"] != "stop":
        calls.append(_modify(instance_id, InstanceInitiatedShutdownBehavior={"Value": "stop"}))
    termination = "termination_protection" not in unsupported
    stop = stop_protection and "stop_protection" not in unsupported
    if termination and not current["termination_protection"]:
        calls.append(_modify(instance_id, DisableApiTermination={"Value": True}))
    if stop and not current["stop_protection"]:
        calls.append(_modify(instance_id, DisableApiStop={"Value": True}))
    predicted = {"termination_protection": True if termination else current["termination_protection"],
                 "stop_protection": True if stop else current["stop_protection"],
                 "shutdown_behavior": "stop", "delete_on_termination": wanted_dot}
    return calls, new_record, predicted


def plan_release(instance_id, current, record, tag_keys):
    """(calls, predicted): restore each recorded value that differs, then remove the record."""
    if record is None:
        return [], current
    restore_dot = sorted(d for d in record["delete_on_termination"]
                         if d in current["delete_on_termination"] and not current["delete_on_termination"][d])
    calls = []
    # Termination and stop protection go last: until the end, the instance stays protected.
    if restore_dot:
        calls.append(_modify(instance_id, BlockDeviceMappings=[{"DeviceName": d, "Ebs": {"DeleteOnTermination": True}}
                                                               for d in restore_dot]))
    if current["shutdown_behavior"] != record["shutdown_behavior"]:
        calls.append(_modify(instance_id, InstanceInitiatedShutdownBehavior={"Value": record["shutdown_behavior"]}))
    if current["stop_protection"] != record["stop_protection"]:
        calls.append(_modify(instance_id, DisableApiStop={"Value": record["stop_protection"]}))
    if current["termination_protection"] != record["termination_protection"]:
        calls.append(_modify(instance_id, DisableApiTermination={"Value": record["termination_protection"]}))
    # The record goes only once everything it holds is restored (DeleteTags without keys would delete every tag).
    if tag_keys:
        calls.append(("DeleteTags", {"Resources": [instance_id], "Tags": [{"Key": k} for k in tag_keys]}))
    dot = dict(current["delete_on_termination"], **{d: True for d in restore_dot})
    predicted = {"termination_protection": record["termination_protection"], "stop_protection": record["stop_protection"],
                 "shutdown_behavior": record["shutdown_behavior"], "delete_on_termination": dot}
    return calls, predicted


def describe_call(call):
    """A short readable form of a planned call, for check mode and errors."""
    return aws_calls.describe_call(call, hide=("InstanceId", "Resources"))


# -- AWS ----------------------------------------------------------------------------------------

def describe_protection_attributes(client, instance_id):
    """{DisableApiTermination: {...}, DisableApiStop: {...}, InstanceInitiatedShutdownBehavior: {...}}.

    DescribeInstances does not carry these, and DescribeInstanceAttribute answers one attribute at a time.
    """
    out = {}
    for attribute in ATTRIBUTES:
        try:
            response = aws_calls.call(client, "DescribeInstanceAttribute", InstanceId=instance_id, Attribute=attribute)
        except Exception as exc:
            exc.action = "DescribeInstanceAttribute"
            raise
        key = attribute[0].upper() + attribute[1:]
        out[key] = response.get(key) or {"Value": None}
    return out


def apply_calls(client, calls):
    """Make the calls in order; the first failure stops the rest (its exception carries `.action` and `.done`)."""
    return aws_calls.make_calls(lambda action: client, calls, shown=describe_call)
