#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the action plugin plugins/action/batch_outcome.py, which does the work on the controller.

DOCUMENTATION = r"""
module: batch_outcome
short_description: Each host's own outcome of a run, from the run's record
version_added: 0.2.0
author: cloudsec.guardduty contributors (@cloudsec)
description:
  - >-
    The last task of a run, on every host (the only per-host task of a run of M(cloudsec.guardduty.batch_stage)). A host whose
    instance has a failed stage, or did not finish (its batch's leader left the play), fails with
    C(HOST (INSTANCE): STAGE failed: CAUSE); the others are ok with C(HOST (INSTANCE): no stage failed), changed when a stage
    changed their instance. Every host has its own line in the recap and in AWX's host view.
  - >-
    With O(gather_from), once for the play (C(run_once)) first: the run's state as the hosts that ran the stages left it (the
    leaders' play of the isolate playbook) is set on every host of this play with every instance's outcome computed once
    (C(ansible_facts.cloudsec_guardduty_outcomes)), and the responder roles' credentials file of the run is removed. Each
    host's task then only looks its outcome up.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  gather_from:
    description:
      - >-
        The hosts that ran the stages; the first one's run state is taken. An empty list takes this host's own.
    type: list
    elements: str
  forget_credentials:
    description:
      - >-
        Remove the run's credentials file (with O(gather_from), by default).
    type: bool
notes:
  - >-
    An action plugin on the controller.
seealso:
  - module: cloudsec.guardduty.batch_stage
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Batches | fail the instances whose stage failed
  cloudsec.guardduty.batch_outcome:
"""

RETURN = r"""
msg:
  description: The host, its instance, and what failed or C(no stage failed).
  returned: always
  type: str
"""
