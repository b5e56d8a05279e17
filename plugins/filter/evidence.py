# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The evidence captures already made for an incident (filters run on the controller, where they are)."""

from ansible_collections.cloudsec.guardduty.plugins.module_utils.evidence_captures import latest_captures


def evidence_captures(evidence_dir, incident_id):
    return latest_captures(evidence_dir, incident_id)


class FilterModule:
    def filters(self):
        return {"evidence_captures": evidence_captures}
