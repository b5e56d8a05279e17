# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The captures ec2_instance_evidence already made for an incident, read on the controller.

Its layout: EVIDENCE_DIR/INCIDENT/ACCOUNT/REGION/INSTANCE/TIMESTAMP/manifest.json. A directory that does not
exist yet (the incident's first run) means no capture, not a warning.
"""

import os
import re

INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8}([0-9a-f]{9})?$")


def latest_captures(evidence_dir, incident_id):
    """{instance id: path of its latest manifest.json} under the incident's evidence directory."""
    root = os.path.join(os.path.expanduser(str(evidence_dir)), str(incident_id))
    latest = {}
    if not os.path.isdir(root) or os.path.islink(root):
        return latest
    for account in sorted(os.listdir(root)):
        for region in _subdirectories(os.path.join(root, account)):
            for instance_id in _subdirectories(os.path.join(root, account, region)):
                if not INSTANCE_ID.match(instance_id):
                    continue
                base = os.path.join(root, account, region, instance_id)
                for stamp in _subdirectories(base):  # timestamps sort in time order
                    manifest = os.path.join(base, stamp, "manifest.json")
                    if os.path.isfile(manifest):
                        latest[instance_id] = manifest
    return latest


def _subdirectories(path):
    try:
        names = sorted(os.listdir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in names if os.path.isdir(os.path.join(path, n)) and not os.path.islink(os.path.join(path, n))]
