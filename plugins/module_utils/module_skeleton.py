# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The batch runner every instance module shares: validate the ids, describe the batch or fail
having changed nothing, work on each instance in a thread pool, then report one result per instance
and every problem, failing the task when any instance failed. The modules keep only what is theirs:
what describing means, what one instance's work is, and what their diff shows.
"""

import contextlib
import copy
import gc
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import DescribeError, error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import (
    InstanceProblem, problem_from_error, split_instance_ids)

WORKERS = 8  # instances worked on at once: enough to hide API latency, few enough not to be throttled


# -- the process's garbage collector -----------------------------------------------------------------------
# A module is one short process. Its imports and its botocore clients (EC2's service model alone is ~70,000
# objects) live until it exits, yet Python's collector scans them over and over while they are made, and again
# as the interpreter shuts down: 0.1-0.15 s of CPU in a 0.65 s ec2_isolation run (docs/benchmarks.md), with
# a playbook running one such process per account and region at once. gc.freeze() moves the objects that exist
# out of every later scan; they are still freed by reference counting, and collection goes on for the rest.
@contextlib.contextmanager
def long_lived():
    """No garbage collection inside the block, whose objects (the clients) live as long as the process; after
    it, everything made so far is frozen out of the collector's scans and collection resumes."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def validate_ids(module, instance_ids, nothing_done="nothing was changed", require_some=False, **extra):
    """The valid ids, in order and without duplicates; fails the module if any id is malformed (or, with
    `require_some`, if there is none). `extra` is added to the failure's output (e.g. an empty `policies`)."""
    valid, bad = split_instance_ids(instance_ids)
    if bad or (require_some and not valid):
        what = "malformed or no instance ids" if require_some else "malformed instance ids"
        module.fail_json(msg=f"{what}; {nothing_done}", instances={}, **extra, errors=[
            InstanceProblem(i, "validate", reason).as_dict() for i, reason in bad.items()])
    return valid


@contextlib.contextmanager
def failing_on_error(module, msg):
    """Fail the module with AWS's error if the block raises: for batch-wide describe calls, made before
    anything is changed."""
    try:
        yield
    except Exception as exc:
        module.fail_json_aws(exc, msg=msg)


@contextlib.contextmanager
def failing_on_describe_error(module):
    """Fail the module if the block raises a DescribeError (a batch-wide describe call that failed)."""
    try:
        yield
    except DescribeError as exc:
        code = error_code(exc.cause)
        module.fail_json(msg=f"batch: {exc.action}: {exc} ({code}); nothing was changed", instances={},
                         errors=[{"instance_id": None, "action": exc.action, "code": code, "message": str(exc)}])


def missing_problems(missing):
    """A problem per instance describe_instances did not find (or found terminated)."""
    return [InstanceProblem(i, "DescribeInstances", reason) for i, reason in missing.items()]


def with_result(problem, result):
    """The problem, carrying the instance's result as it stands (what was done before the failure)."""
    problem.result = result
    return problem


def map_instances(instance_ids, work, workers=WORKERS, unexpected_action=None):
    """[(instance_id, result, problem)] in the order of `instance_ids`, `work(instance_id)` run in a pool.

    `work` returns the instance's result or raises InstanceProblem, whose `result` (if set) is the
    partial result. With `unexpected_action`, any other exception also stays with its instance, as a
    problem of that action; without it, it propagates.
    """
    def one(instance_id):
        try:
            return instance_id, work(instance_id), None
        except InstanceProblem as problem:
            return instance_id, getattr(problem, "result", None), problem
        except Exception as exc:
            if unexpected_action is None:
                raise
            return instance_id, None, problem_from_error(instance_id, unexpected_action, exc)

    instance_ids = list(instance_ids)
    if not instance_ids:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(instance_ids))) as pool:
        return list(pool.map(one, instance_ids))


def run_per_instance(instance_ids, work, results, problems, default_result=None, workers=WORKERS):
    """Run `work` for each instance (see map_instances) and add each outcome to `results` (by instance
    id) and `problems` (in order); a failed instance without a partial result gets `default_result`."""
    for instance_id, result, problem in map_instances(instance_ids, work, workers):
        result = result or copy.deepcopy(default_result or {"changed": False, "calls": []})
        if problem:
            problems.append(problem)
            result["error"] = problem.as_dict()
        results[instance_id] = result


def apply_with_partial_result(instance_id, result, calls, make_calls, check_mode, action="apply"):
    """`result` once `make_calls(calls)` succeeded (or at once in check mode or without calls).

    On failure, raises the InstanceProblem of the failed call (its `action`, else `action`) carrying the
    partial result: changed if any call was made, `after` unknown, and `calls` the calls done (the
    exception's `done`, as aws_calls.make_calls sets it).
    """
    if check_mode or not calls:
        return result
    try:
        make_calls(calls)
    except Exception as exc:
        done = getattr(exc, "done", [])
        problem = problem_from_error(instance_id, action, exc)  # the failed call's own action first
        raise with_result(problem, dict(result, changed=bool(done), after=None, calls=done)) from None
    return result


def changed_before_after(results):
    """The usual diff: `before` and `after` of the instances that changed."""
    changed = {i: r for i, r in results.items() if r.get("changed")}
    return {"before": {i: r.get("before") for i, r in changed.items()},
            "after": {i: r.get("after") for i, r in changed.items()}}


def batch_output(module, results, problems, default_result=None, diff=changed_before_after, order=None, **extra):
    """The module's output: every problem shows in its instance's result (`default_result` for an
    instance without one), `changed` if any instance changed, `extra` keys, `errors`, and the diff
    (`diff(results)`) when asked for. With `order`, the instances are listed in that order."""
    for problem in problems:
        result = results.setdefault(problem.instance_id, copy.deepcopy(default_result or {"changed": False, "calls": []}))
        result["error"] = problem.as_dict()
    if order is not None:
        results = {i: results[i] for i in order if i in results}
    out = {"changed": any(r.get("changed") for r in results.values()), "instances": results, **extra,
           "errors": [p.as_dict() for p in problems]}
    if module._diff and diff:
        out["diff"] = diff(results)
    return out


def exit_batch(module, valid, problems, out, failed="failed"):
    """Fail the module naming every problem if any instance failed, else exit with `out`."""
    gc.freeze()  # the process ends here: no collection pass over what it made (see long_lived)
    if problems:
        module.fail_json(msg=f"{len(problems)} of {len(valid)} instances {failed}: " + "; ".join(str(p) for p in problems), **out)
    module.exit_json(**out)


def finish(module, valid, results, problems, failed="failed", **output_options):
    """batch_output, then exit_batch."""
    exit_batch(module, valid, problems, batch_output(module, results, problems, **output_options), failed)
