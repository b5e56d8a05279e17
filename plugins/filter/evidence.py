# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The evidence captures already made for an incident (filters run on the controller, where they are)."""

import os

from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_captures import latest_captures

EARLIER_NOTE = "captured earlier for this incident (isolate_evidence_recapture true captures again)"


def evidence_captures(evidence_dir, incident_id):
    return latest_captures(evidence_dir, incident_id)


def evidence_earlier(evidence_dir, incident_id):
    """{instance_id: evidence part} of the instances already captured for the incident: not captured again."""
    return {i: {"changed": False, "path": os.path.dirname(path), "files": [], "note": EARLIER_NOTE}
            for i, path in latest_captures(evidence_dir, incident_id).items()}


class FilterModule:
    def filters(self):
        return {"evidence_captures": evidence_captures, "evidence_earlier": evidence_earlier}
