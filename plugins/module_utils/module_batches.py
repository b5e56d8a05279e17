# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Several account/region batches in one module process (the `batches` option, doc fragment
cloudsec.guardduty.batches).

A run over an organization has one batch per account, region and role: 80 at 20 accounts x 4 regions. A module
process per batch pays Python, Ansible's module_utils and boto3's start (about 0.45 s of CPU) and loads EC2's model
(about 70,000 objects) each time; at 80 batches on two cores that was a third of the controller's CPU
(docs/benchmarks.md, `make bench-org`). With `batches`, cloudsec.guardduty.batch_stage hands a module process
several batches: each runs in its own thread, exactly as the module runs one batch (its own region, credentials,
locks and result), through a stand-in for the module (BatchModule) whose exit and failure end that batch only.
The process answers {"changed", "batches": [each batch's own result, in order]}.
"""

import threading
import traceback
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_region
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

# Batches worked on at once in one process; each has its own workers for its instances. At 5,000 instances over 80
# batches and 2 processes, 40 at once gave the same isolation time as 8 (57.1 s, 56.9 s: the CPU bounds it, not the
# answer time) and 10% more memory (docs/benchmarks.md, `make bench-org`).
BATCHES_AT_ONCE = 8


def batches_spec():
    """The `batches` option's argument spec (documented by the cloudsec.guardduty.batches doc fragment)."""
    return dict(type="list", elements="dict", options=dict(
        instance_ids=dict(type="list", elements="str", required=True),
        region=dict(type="str"),
        access_key=dict(type="str", no_log=False),
        secret_key=dict(type="str", no_log=True),
        session_token=dict(type="str", no_log=True),
    ))


def batch_params(params, entry):
    """One batch's module options: the module's own, with the batch's instances, region and credentials."""
    merged = dict(params, batches=None)
    # A batch's own options are its entry's (batch_engine.PER_BATCH_OPTIONS, the controller's side, names the same:
    # not imported here, so that a module process does not load the controller's engine); the rest of the module's
    # options is the same for every batch.
    for name in batches_spec()["options"]:
        if entry.get(name) is not None:
            merged[name] = entry[name]
    return merged


class BatchEnded(Exception):
    """A batch's exit or failure: its result, the other batches go on."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


class BatchModule:
    """The module as one batch sees it: its own params, region and warnings; `exit_json` and `fail_json` end the
    batch (BatchEnded) instead of the process. AnsibleAWSModule's own client and AWS error helpers are used as
    they are, over this batch's options."""

    def __init__(self, module, params, shared_session):
        self._parent = module
        self.params = params
        self.check_mode = module.check_mode
        self._diff = module._diff
        self._name = getattr(module, "_name", None)
        self._warnings = []
        self.shared_boto3_session = shared_session  # aws_calls.ModuleClients makes its clients from it

    # AnsibleAWSModule's own client and AWS error helpers, over this batch's options
    fail_json_aws = AnsibleAWSModule.fail_json_aws
    fail_json_aws_error = AnsibleAWSModule.fail_json_aws_error
    _gather_versions = AnsibleAWSModule._gather_versions
    client = AnsibleAWSModule.client

    @property
    def region(self):
        return get_aws_region(self)

    def warn(self, warning):
        self._warnings.append(warning)

    def exit_json(self, **kwargs):
        raise BatchEnded(self._result(kwargs))

    def fail_json(self, msg=None, **kwargs):
        raise BatchEnded(self._result(dict(kwargs, failed=True, msg=msg)))

    def _result(self, result):
        if self._warnings:
            result["warnings"] = list(dict.fromkeys(list(result.get("warnings") or []) + self._warnings))
        return result

    def __getattr__(self, name):
        return getattr(self._parent, name)


class SharedSession:
    """One boto3 session for every batch of the process: botocore loads each service's model once per session.
    A boto3 session is not safe to use from several threads at once (its clients are): clients are made under
    the lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sessions = {}


def run_one(module, params, work, shared_session):
    """One batch's result: `work(batch_module)` run to its exit or failure."""
    batch = BatchModule(module, params, shared_session)
    try:
        work(batch)
    except BatchEnded as ended:
        return ended.result
    except Exception as exc:  # pylint: disable=broad-except
        # An error the module did not expect ends this batch only, with its cause, as Ansible would show it.
        return batch._result({"failed": True, "msg": f"{batch_label(params)}: unexpected error: {exc}",
                              "exception": traceback.format_exc()})
    return batch._result({"failed": True, "msg": f"{batch_label(params)}: the module ended without a result"})


def batch_label(params):
    ids = list(params.get("instance_ids") or [])
    shown = ", ".join(ids[:2]) + (f" and {len(ids) - 2} more" if len(ids) > 2 else "")
    return f"batch ({shown}) in {params.get('region') or 'the default region'}"


def run_batches(module, work, at_once=BATCHES_AT_ONCE):
    """Every batch of `module.params["batches"]` through `work` (the module's run over one batch), `at_once` at a
    time; exits the process with each batch's result, in order. A batch that failed is failed in its own result:
    the process itself succeeds, so that the caller reads every batch's answer."""
    entries = module.params["batches"]
    shared = SharedSession()
    with ThreadPoolExecutor(max_workers=max(1, min(at_once, len(entries)))) as pool:
        results = list(pool.map(lambda entry: run_one(module, batch_params(module.params, entry), work, shared), entries))
    module.exit_json(changed=any(r.get("changed") for r in results), batches=results)
