# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)


class ModuleDocFragment:
    # Several account/region batches in one module process (module_utils/module_batches.py), as
    # cloudsec.guardduty.batch_stage runs the module over an organization.
    DOCUMENTATION = r"""
options:
  batches:
    description:
      - Several batches in this one module run, instead of O(instance_ids). Each batch is worked on exactly as a run
        of the module with its instances, region and credentials would be (its own locks, calls and result), in
        threads, eight batches at a time. A batch's failure fails that batch only.
      - The module then returns C(batches), each batch's own result in the order given, and C(changed) if any batch
        changed. The run itself does not fail when a batch does; each failed batch has C(failed) and C(msg).
      - What this saves is one Python, Ansible and boto3 start per batch (about 0.45 s of CPU), and EC2's model loaded
        once per process instead of once per batch. M(cloudsec.guardduty.batch_stage) uses it over many accounts
        and regions; a play rarely needs it.
      - The other options apply to every batch.
    type: list
    elements: dict
    required: false
    suboptions:
      instance_ids:
        description: The batch's instances, in its account and region.
        type: list
        elements: str
        required: true
      region:
        description: The batch's region; the module's O(region) when not given.
        type: str
      access_key:
        description: The batch's credentials (an assumed role's); the module's own when not given.
        type: str
      secret_key:
        description: The secret of O(batches[].access_key).
        type: str
      session_token:
        description: The session token of O(batches[].access_key).
        type: str
"""
