#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_instance_evidence
version_added: 1.0.0
short_description: Capture the metadata, console output and console screenshot of EC2 instances as evidence
description:
  - For each instance, writes into a new directory
    O(evidence_dir)/<incident_id>/<account>/<region>/<instance_id>/<UTC timestamp>/ on the controller
    C(instance.json) (its DescribeInstances document), C(network-interfaces.json) (DescribeNetworkInterfaces of its
    network interfaces), C(volumes.json) (DescribeVolumes of its volumes), C(attributes.json),
    C(console-output.txt) (GetConsoleOutput with Latest=true, the raw bytes after base64 decoding; Latest is
    Nitro-only, so an instance of a Xen type, or one AWS refuses Latest for, gets the buffered output without it,
    said in RV(instances.notes) and the manifest) and
    C(console-screenshot.jpg) (GetConsoleScreenshot, a JPG), then C(manifest.json) listing each file's SHA-256 and size.
  - User data is not stored, because it often holds secrets; C(attributes.json) records only its SHA-256 and size.
  - Evidence is never overwritten. Each run creates a new timestamped capture directory, refuses to use one that
    exists, and creates every file with O_EXCL. Directories are mode 0700, files 0600.
  - Not idempotent by design. Evidence is a point-in-time record, so every run (outside check mode) captures anew
    and reports C(changed). In check mode nothing is written and the module returns what it would capture.
  - The module runs on the controller (local connection), so O(evidence_dir) is a directory of the controller.
  - Works on a batch; a failure on one instance names the instance, the AWS action and error code, writes nothing
    for that instance, and never hides the others' results.
options:
  instance_ids:
    description: The instances to capture.
    type: list
    elements: str
    required: true
  incident_id:
    description:
      - The incident; it names a directory level.
      - Letters, digits, C(.), C(_) and C(-), starting with a letter or digit, at most 128 characters (as every module).
    type: str
    required: true
  evidence_dir:
    description: The evidence store's root directory on the controller. Created (mode 0700) if missing.
    type: path
    required: true
  console_output:
    description: Capture the console output.
    type: bool
    default: true
  screenshot:
    description: Capture a console screenshot. Turn off for instance types that do not support it.
    type: bool
    default: true
  s3_bucket:
    description:
      - Also upload each capture to this S3 bucket, under O(s3_prefix) then the same layout as on disk.
      - Objects are never replaced (PutObject with C(If-None-Match) C(*)), S3 checks each file's SHA-256
        (C(ChecksumSHA256)), and they are encrypted at rest (O(s3_sse)). The manifest goes last.
      - The local capture is written first and kept if the upload fails.
    type: str
  s3_prefix:
    description: Key prefix in O(s3_bucket).
    type: str
    default: ""
  s3_sse:
    description: Server-side encryption of the uploaded objects.
    type: str
    choices: [AES256, "aws:kms"]
    default: AES256
  s3_kms_key_id:
    description: The KMS key for O(s3_sse=aws:kms); the bucket's default KMS key when omitted.
    type: str
author:
  - cloudsec.guardduty contributors (@cloudsec)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Capture what the compromised instances look like now
  cloudsec.guardduty.ec2_instance_evidence:
    instance_ids: "{{ compromised_instance_ids }}"
    incident_id: INC-2024-0042
    evidence_dir: /srv/evidence
  register: evidence

- name: Keep the manifest hashes in the incident log
  ansible.builtin.debug:
    msg: "{{ item.key }} {{ item.value.manifest_sha256 }}"
  loop: "{{ evidence.instances | dict2items }}"
"""

RETURN = r"""
instances:
  description: Per instance id, the capture.
  returned: always
  type: dict
  contains:
    changed:
      description: Whether evidence was written for this instance.
      type: bool
    path:
      description: The capture directory (in check mode, the one a run now would create).
      type: str
      sample: /srv/evidence/INC-1/123456789012/us-east-1/i-0123456789abcdef0/20240101T120000.123456Z
    files:
      description: The files written (in check mode, to be written), with SHA-256 and size (not in check mode).
      type: list
      elements: dict
      sample: [{"name": "instance.json", "sha256": "9f86d0...", "size": 4211}]
    s3:
      description: With O(s3_bucket), the uploaded objects (in check mode, the keys to upload) and their SHA-256.
      type: list
      elements: dict
      returned: when O(s3_bucket) is set
      sample: [{"key": "evidence/INC-1/123456789012/us-east-1/i-0123456789abcdef0/20240101T120000.123456Z/manifest.json",
                "sha256": "9f86d0..."}]
    manifest:
      description: The path of manifest.json.
      type: str
      returned: when written
    manifest_sha256:
      description: SHA-256 of manifest.json as written; keep it to prove later that the capture is unchanged.
      type: str
      returned: when written
    notes:
      description: What the capture did differently, such as the console output read without Latest (a Xen instance type).
      type: list
      elements: str
      returned: when there is one
    error:
      description: Why this instance failed; names the instance, the AWS action and its error code.
      type: dict
      returned: on failure of this instance
errors:
  description: The failures, one per failed instance.
  returned: always
  type: list
  elements: dict
"""

import datetime
import os

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudsec.guardduty.plugins.module_utils import guards
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import caller_identity, error_message, module_client
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import (
    failing_on_error, finish, missing_problems, run_per_instance, validate_ids, with_result)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.ec2_instance_evidence import (
    FILE_MANIFEST, capture_dir, collect, describe_by_instance, evidence_files, planned_files,
    raw_console_client, s3_key, upload_capture, write_capture)
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, describe_instances, error_code, problem_from_error)


def main():
    argument_spec = dict(
        instance_ids=dict(type="list", elements="str", required=True),
        incident_id=dict(type="str", required=True),
        evidence_dir=dict(type="path", required=True),
        console_output=dict(type="bool", default=True),
        screenshot=dict(type="bool", default=True),
        s3_bucket=dict(type="str"),
        s3_prefix=dict(type="str", default=""),
        s3_sse=dict(type="str", choices=["AES256", "aws:kms"], default="AES256"),
        s3_kms_key_id=dict(type="str"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    valid = validate_ids(module, params["instance_ids"], "nothing was captured")
    problem = guards.incident_id_problem(params["incident_id"])
    if problem:
        module.fail_json(msg=f"{problem}; nothing was captured")

    client = raw_console_client(module_client(module, "ec2"))
    s3 = module_client(module, "s3") if params["s3_bucket"] else None
    region = module.region
    with failing_on_error(module, "could not describe the instances; nothing was captured"):
        account = caller_identity(module_client(module, "sts"))["Account"]
        found, missing = describe_instances(client, valid)
        enis, volumes = describe_by_instance(client, list(found))

    # One timestamp for the run: every instance's capture of this run sits under the same name.
    now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    files_wanted = planned_files(params["console_output"], params["screenshot"])

    def capture(instance_id):
        directory = capture_dir(params["evidence_dir"], params["incident_id"], account, region, instance_id, timestamp)
        relative = os.path.relpath(directory, params["evidence_dir"])
        if module.check_mode:
            planned = {"changed": True, "path": directory, "files": [{"name": n} for n in files_wanted + [FILE_MANIFEST]]}
            if s3:
                planned["s3"] = [{"key": s3_key(params["s3_prefix"], relative, n), "sha256": None} for n in files_wanted + [FILE_MANIFEST]]
            return planned
        notes = []
        try:
            user_data, output, image = collect(client, instance_id, params["console_output"], params["screenshot"],
                                               found[instance_id].get("InstanceType"), notes)
        except Exception as exc:
            raise with_result(problem_from_error(instance_id, "GetConsoleOutput", exc), {"changed": False, "path": None, "files": []}) from None
        files = evidence_files(found[instance_id], enis[instance_id], volumes[instance_id], user_data, output, image)
        about = {"incident_id": params["incident_id"], "account": account, "region": region, "instance_id": instance_id,
                 "captured_at": now.isoformat().replace("+00:00", "Z"),
                 "collector": "cloudsec.guardduty.ec2_instance_evidence"}
        if notes:
            about["notes"] = notes  # the manifest says the console output is the buffered one
        try:
            document, manifest_body, digest = write_capture(directory, files, about)
        except FileExistsError:
            raise with_result(InstanceProblem(
                instance_id, "WriteEvidence", f"capture directory {directory} already exists: earlier evidence is never overwritten",
                "EvidenceExists"), {"changed": False, "path": directory, "files": []}) from None
        except OSError as exc:
            raise with_result(InstanceProblem(instance_id, "WriteEvidence", f"{directory}: {exc.strerror or exc}", "OSError"),
                              {"changed": False, "path": directory, "files": []}) from None
        result = {"changed": True, "path": directory, "files": document["files"],
                  "manifest": os.path.join(directory, FILE_MANIFEST), "manifest_sha256": digest}
        if notes:
            result["notes"] = notes
        if s3:
            try:
                result["s3"] = upload_capture(s3, params["s3_bucket"], params["s3_prefix"], relative,
                                              dict(files, **{FILE_MANIFEST: manifest_body}), params["s3_sse"], params["s3_kms_key_id"])
            except Exception as exc:
                message = error_message(exc)
                result["s3"] = []
                raise with_result(InstanceProblem(
                    instance_id, "PutObject", f"{message}; the local capture {directory} is complete", error_code(exc)), result) from None
        return result

    results, problems = {}, missing_problems(missing)
    nothing = {"changed": False, "path": None, "files": []}
    run_per_instance([i for i in valid if i in found], capture, results, problems, nothing)
    finish(module, valid, results, problems, default_result=nothing,
           diff=lambda done: {"before": {}, "after": {i: r["path"] for i, r in done.items() if r["changed"]}})


if __name__ == "__main__":
    main()
