#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

# The documentation of the action plugin plugins/action/batch_stage.py, which does the work on the controller.

DOCUMENTATION = r"""
module: batch_stage
short_description: Run one step of the procedure once per account, region and role batch, and record each instance's part
version_added: 0.2.0
author: cloudsec.guardduty contributors (@cloudsec)
description:
  - >-
    One task per step of a run (roles isolate, and the other roles as they move to it). Run it with C(run_once):
    it works for every host of the play at once and sets the run's state on each of them.
  - >-
    The run's state is one host fact, C(ansible_facts.cloudsec_guardduty_run) (the incident, the batches placed and still
    current, the record C({instance_id: {stage: part}}), the failures), as JSON text read with the P(cloudsec.guardduty.run#filter)
    filter. O(stage=place) starts it; every other stage reads it.
  - >-
    O(stage=options) checks the role options of every current batch's leader (its first host) in this one task: the
    variables that leader would run the task with, each option of O(argument_spec) templated and checked as
    M(ansible.builtin.validate_argument_spec) checks them, then O(check_values) by the modules' guards O(checks). A batch
    whose leader's options are refused is recorded as failed under C(options), nothing changed for it, and its leader
    leaves the run's C(leaders) (the hosts of a play of the leaders); each refusal is also a warning.
  - >-
    O(stage=preflight) without O(module) assumes each responder role once for the run (O(session_name), O(session_duration)),
    proves each batch's credentials with sts:GetCallerIdentity (O(verify_identity)), and records each instance's preflight.
    When modules run on the controller (a local connection) it makes these calls in the controller's own process, with the
    options and environment M(cloudsec.guardduty.sts_responder_sessions) would read; otherwise it runs that module once.
    The credentials are kept in a file of the controller readable by its owner only (0600, in a 0700 directory made for the
    run) for the later stages, never in facts, results or logs; M(cloudsec.guardduty.batch_outcome) removes it at the end.
  - >-
    Any other stage runs O(module) once per current batch, the batches in parallel (at most O(max_parallel) at a time), with
    O(options), the batch's instances (O(per_instance)), its region and its role's credentials (O(use_credentials)).
    A module that takes several batches in one process (M(cloudsec.guardduty.ec2_isolation)) runs instead over at most
    O(processes) processes, each given its share of the batches; every batch still has its own result.
    Each instance's part of the module's C(instances) (or the batch's error, when the module failed for the whole batch) is
    recorded under O(stage). An instance whose part has an error leaves the current batches, so later stages leave it alone,
    unless the stage is one of the run's evidence stages (O(evidence_stages)): containment never waits on evidence.
  - >-
    The task itself does not fail for a failed instance or batch; M(cloudsec.guardduty.batch_outcome) fails each host whose
    instance failed, by name, at the end.
attributes:
  check_mode:
    support: full
    details: The modules run in check mode; role assumption and sts:GetCallerIdentity run in check mode too (they change nothing).
  diff_mode:
    support: full
    details: The modules' diffs, one per batch.
  platform:
    support: full
    platforms: posix
options:
  stage:
    description:
      - >-
        The stage's name in the record (V(protection), V(isolation), ...), or V(place), V(options) or V(preflight).
    type: str
    required: true
  module:
    description:
      - >-
        The module the stage runs once per batch (a FQCN).
    type: str
  options:
    description:
      - >-
        The module's options, the same for every batch.
    type: dict
    default: {}
  from_hosts:
    description:
      - >-
        Options built per batch from its hosts' inventory variables.
      - >-
        V(finding_ids) the hosts' C(guardduty_finding_ids); V(account_id) the batch's account; V(findings) the hosts'
        C(guardduty_findings), each with its instance, when every host has them; V(securityhub_findings) C({instance_id: finding ids})
        and C(detector_id); V(confirm) the batch's instance ids as C(confirm); V(support_case) the account's instances and the hosts'
        C(guardduty_finding_types); V(instance_filter) C(filters) on the batch's instance ids.
    type: list
    elements: str
    choices: [finding_ids, account_id, findings, securityhub_findings, confirm, support_case, instance_filter]
    default: []
  per_instance:
    description:
      - >-
        Give the module the batch's instances as C(instance_ids). Off for a module over findings, not instances; such a stage is
        not run for a batch whose hosts have no finding.
    type: bool
    default: true
  use_credentials:
    description:
      - >-
        Authenticate each batch with its responder role's credentials. Off, the controller's own (the GuardDuty administrator's).
    type: bool
    default: true
  answered:
    description:
      - >-
        Instances whose part is known without asking, C(instance_id: part) pairs; the module is not given them.
    type: dict
  per_account:
    description:
      - One call per account, for all of its current instances, with the first batch's role (an AWS API that is global, such
        as Support's); no C(region) is given.
    type: bool
    default: false
  recorded:
    description:
      - Without O(module), the parts a role decided itself, a dict of instance id to part, recorded under O(stage).
    type: dict
  record_tags:
    description:
      - With O(parts=records), the tags that show a record of the isolate role's modules.
    type: list
    elements: str
  planned_by:
    description:
      - In check mode, the stage whose planned snapshots lift ec2_eradicate's evidence refusal (the stage records what a real
        run does, which takes the snapshots first) (M(cloudsec.guardduty.ec2_eradicate)).
    type: str
  parts:
    description:
      - >-
        How each instance's part is read from the module's result. V(instances) its C(instances) key; V(findings), a module that
        answers per finding (M(cloudsec.guardduty.guardduty_finding)), each instance gets its host's findings; V(support), each
        instance of the account gets its account's support case; V(records), a DescribeInstances (M(amazon.aws.ec2_instance_info)),
        each instance gets which of O(record_tags) it carries and its incident tag.
    type: str
    choices: [instances, findings, support, records]
    default: instances
  max_parallel:
    description:
      - >-
        How many batches run at the same time. Default the run's forks, at most 8.
    type: int
  processes:
    description:
      - >-
        For a module that takes several batches in one process (its C(batches) option: M(cloudsec.guardduty.ec2_isolation)),
        how many module processes share the stage's batches, each working on up to eight of its batches at once.
        Default the smaller of O(max_parallel) and the controller's CPUs, at least 2.
      - >-
        One process per batch paid Python's, Ansible's and boto3's start (about 0.45 s of CPU) for each: a third of the
        controller's CPU at 80 account/region batches (docs/benchmarks.md). A process that dies fails its batches, each by
        name.
    type: int
  incident:
    description:
      - >-
        O(stage=place) the run's incident id. One the modules would refuse (letters, digits, C(.), C(_) and C(-), starting with a
        letter or digit, at most 128 characters)
        stops the stage, nothing placed.
    type: str
  incident_given:
    description:
      - >-
        O(stage=place) the incident id was given (C(-e incident_id)), not named after the day. Not given, the stage stops, nothing
        placed, when an instance of the play is already contained under another incident (its C(guardduty:incident)
        tag), and says which (P(cloudsec.guardduty.incident_plan#filter)).
    type: bool
    default: false
  size:
    description:
      - >-
        O(stage=place) most instances per batch; unset, a whole account/region/role batch.
    type: int
  by_leader:
    description:
      - >-
        O(stage=place) the stages run in a play of the batches' leaders (their first hosts) only; a batch whose leader leaves that
        play is not finished, and its hosts fail so at the end.
    type: bool
    default: false
  evidence_stages:
    description:
      - >-
        O(stage=place) the stages whose failure is recorded without taking the instance out of the later stages.
    type: list
    elements: str
    default: []
  started:
    description:
      - >-
        O(stage=place) when the run started, for the report.
    type: str
  argument_spec:
    description:
      - >-
        O(stage=options) the options of a role's entry point, as in its C(meta/argument_specs.yml).
    type: dict
  checks:
    description:
      - >-
        O(stage=options) C({option: kind}) checked with the modules' own rules, as the P(cloudsec.guardduty.option_problems#filter)
        filter takes them.
    type: dict
  check_values:
    description:
      - >-
        O(stage=options) C({option: the variable holding its value}) for O(checks) (and what they read, such as
        C(<option>_acknowledge_public)).
    type: dict
  session_name:
    description:
      - >-
        O(stage=preflight) the responder roles' RoleSessionName; default C(cloudsec-guardduty-<incident>), made safe, at most 64 characters.
    type: str
  session_duration:
    description:
      - >-
        O(stage=preflight) the assumed sessions' lifetime in seconds.
    type: int
    default: 3600
  verify_identity:
    description:
      - >-
        O(stage=preflight) prove each batch's credentials with sts:GetCallerIdentity in its region.
    type: bool
    default: true
notes:
  - >-
    An action plugin on the controller; the modules run on the controller too (C(connection=local)).
seealso:
  - module: cloudsec.guardduty.batch_outcome
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Contain | isolate every network interface (ec2_isolation)
  cloudsec.guardduty.batch_stage:
    stage: isolation
    module: cloudsec.guardduty.ec2_isolation
    options:
      state: isolated
      incident_id: INC-42
  run_once: true
"""

RETURN = r"""
results:
  description: Each batch's module result, the batch as its C(item).
  returned: always
  type: list
  elements: dict
incident_lines:
  description:
    - O(stage=place) the run's incident and whether it was given, then each other incident the play's instances are already
      contained under, with its hosts; also when the stage stops over them.
  returned: O(stage=place)
  type: list
  elements: str
  sample: ["incident: INC-42 (given)"]
refused:
  description: "O(stage=options) C({leader: [problem]}) for each leader whose options were refused."
  returned: O(stage=options)
  type: dict
  sample: {"web-1": ["isolate_network_group_name 'sg-x' starts with 'sg-', which AWS refuses (it is the prefix of group ids)"]}
failures:
  description: "C({instance_id: 'STAGE failed: CAUSE'}) for every instance of the run with a failed stage so far."
  returned: always
  type: dict
ansible_facts:
  description: The run's state.
  returned: always
  type: dict
  contains:
    cloudsec_guardduty_run:
      description:
        - The incident, hosts, batches C(placed) and C(current), C(leaders), C(record), C(failures) (no credentials), as
          JSON text; read it with the P(cloudsec.guardduty.run#filter) filter.
        - Text, not a dictionary, because ansible-core copies every dictionary fact for every host on every task.
      type: str
    cloudsec_guardduty_outcomes:
      description: Emptied by each stage; set by M(cloudsec.guardduty.batch_outcome) to every instance's outcome.
      type: str
"""
