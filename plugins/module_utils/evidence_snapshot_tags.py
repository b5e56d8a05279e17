# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The tags that mark an evidence snapshot, and the volumes an instance has to snapshot.

Shared by the step that takes the snapshots (ec2_forensic_snapshot.py) and the one that will not terminate an
instance without them (ec2_eradicate.py), so neither imports the other.
"""

TAG_INCIDENT = "guardduty:incident"
TAG_INSTANCE = "guardduty:instance"
TAG_VOLUME = "guardduty:volume"
TAG_DEVICE = "guardduty:device"
TAG_FINDINGS = "guardduty:findings"
TAG_SNAPSHOT_AT = "guardduty:snapshot-at"
TAG_SOURCE_SNAPSHOT = "guardduty:source-snapshot"
TAG_SOURCE_REGION = "guardduty:source-region"


def attached_volumes(instance):
    """[{"volume_id", "device"}] of the instance's EBS volumes, in device order."""
    volumes = []
    for mapping in instance.get("BlockDeviceMappings") or []:
        ebs = mapping.get("Ebs") or {}
        if ebs.get("VolumeId"):
            volumes.append({"volume_id": ebs["VolumeId"], "device": mapping.get("DeviceName")})
    return sorted(volumes, key=lambda v: v["device"] or "")
