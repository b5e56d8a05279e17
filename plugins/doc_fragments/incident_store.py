# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # The incident store: where the records needed to undo a change, and the per-instance operation
    # locks, are kept out of the attacker's reach (the member account can write tags, not this store).
    DOCUMENTATION = r"""
options:
  incident_store:
    description:
      - Where the records needed to undo a change and the per-instance operation locks are kept, out of the
        reach of the member account (anyone with C(ec2:CreateTags) there can write the C(guardduty:*) tags,
        which are kept only as a hint to resume and are cross-checked against this store).
      - A directory on the controller (created with mode 0700, files 0600), or C(s3://BUCKET/PREFIX) for a
        bucket of the security account shared by several controllers or AWX nodes.
      - The default is the environment variable E(CLOUDSEC_GUARDDUTY_INCIDENT_STORE), then
        C(~/.cloudsec-guardduty).
    type: str
    required: false
"""
