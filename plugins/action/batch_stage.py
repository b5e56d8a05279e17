# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""One stage of a run: a module once per account/region/role batch, each instance's part in the run's record.

Documented in plugins/modules/batch_stage.py. The decisions (which batches, which options, which part for
which instance) are plain functions in module_utils/batch_engine.py; this plugin does the I/O: it reads and
returns the run state (one host fact), runs the modules (the batches in parallel) and keeps the responder
roles' credentials in a 0600 file of the controller, never in facts, results or logs.
"""

import json
import os
import shlex
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.vars.clean import remove_internal_keys

from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine
from ansible_collections.cloudsec.guardduty.plugins.module_utils.guards import incident_id_problem
from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident import incident_plan
from ansible_collections.cloudsec.guardduty.plugins.plugin_utils.leader_options import leader_option_problems

try:  # ansible-core 2.19
    from ansible.executor.module_common import _apply_action_arg_defaults as _with_defaults
except ImportError:  # ansible-core 2.17, 2.18
    from ansible.executor.module_common import get_action_args_with_defaults as _old_with_defaults

    def _with_defaults(action, task, args, templar):
        return _old_with_defaults(action, args, task.module_defaults, templar, action_groups=task._parent._play._action_groups)

RESPONDER_SESSIONS = "cloudsec.guardduty.sts_responder_sessions"
DEFAULT_PARALLEL = 8


def plain(value):
    """Inventory and template values as plain JSON data (hostvars hand out lazy, tagged containers)."""
    if isinstance(value, Mapping):
        return {to_text(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return to_text(value)
    return value


class HostVariablesOnce(dict):
    """hostvars[host], read once per host. ansible-core computes every variable of a host on each hostvars[host]
    (VariableManager.get_vars, about 0.5 ms a host): the place stage reads them once for the incident and the batches."""

    def __init__(self, hostvars):
        super().__init__()
        self._hostvars = hostvars

    def __missing__(self, host):
        variables = self[host] = self._hostvars[host]
        return variables

    def get(self, host, default=None):
        variables = self[host]
        return default if variables is None else variables


def shown_result(batch, result):
    """A batch's module result as the stage shows it, the batch as its `item`. A batch that failed is its
    instances' error in the record, not the task's failure (Ansible fails a task when one of its `results` did)."""
    shown = dict(result, item=batch)
    if shown.pop("failed", False):
        shown["batch_failed"] = True
    return shown


def run_state(task_vars):
    """The run's state (module_utils/batch_engine.py RUN_FACT) as this host holds it, or None."""
    facts = task_vars.get("ansible_facts") or {}
    state = engine.decode_run(plain(facts.get(engine.RUN_FACT) or task_vars.get(engine.RUN_FACT)))
    return state or None


# -- the responder roles' credentials: a 0600 file of the controller, for the run's lifetime -------------
def read_credentials(path):
    if not path or not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_credentials(path, credentials):
    """Keep the credentials in `path` (0600, in a 0700 directory made for the run); returns the path."""
    if not path:
        path = os.path.join(tempfile.mkdtemp(prefix="cloudsec-guardduty-run-"), "credentials.json")
    descriptor = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle)
    os.replace(path + ".new", path)
    return path


def session_entry(creds):
    """What the run keeps of an assumed role's session: its keys and when it ends."""
    return {k: creds.get(k) for k in ("access_key", "secret_key", "session_token", "expiration")}


def forget_credentials(path):
    """Remove the run's credentials file and its directory (batch_outcome, at the end of the run)."""
    if path and os.path.isfile(path):
        os.remove(path)
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("stage", "module", "options", "from_hosts", "per_instance", "use_credentials", "answered",
                             "parts", "max_parallel", "incident", "incident_given", "size", "evidence_stages", "by_leader", "started",
                             "verify_identity", "session_name", "session_duration", "per_account", "planned_by",
                             "recorded", "record_tags", "processes", "argument_spec", "checks", "check_values"))

    # -- running modules, the batches in parallel ---------------------------------------------------------
    def _prepare(self, module_name, args, task_vars, check_mode=None, no_log=False):
        args = _with_defaults(module_name, self._task, dict(args), self._templar)
        self._update_module_args(module_name, args, task_vars)
        if check_mode is not None:
            args["_ansible_check_mode"] = check_mode
        if no_log:
            args["_ansible_no_log"] = True
        bits, _path = self._configure_module(module_name=module_name, module_args=args, task_vars=task_vars)
        return args, bits

    def _on_controller(self):
        """The connection is local: modules run on the controller, fed on stdin (_run_local)."""
        return getattr(self._connection, "transport", None) == "local" or "local" in str(self._connection._load_name)

    def _run_local(self, bits):
        """A module on the controller, fed on stdin as Ansible's pipelining does: no temporary files, thread-safe."""
        interpreter = shlex.split(to_text(bits.shebang).replace("#!", "", 1).strip())
        done = subprocess.run(interpreter, input=bits.b_module_data, capture_output=True, check=False)
        return {"rc": done.returncode, "stdout": to_text(done.stdout, errors="surrogate_or_replace"),
                "stderr": to_text(done.stderr, errors="surrogate_or_replace")}

    def _run_modules(self, module_name, calls, task_vars, check_mode=None, no_log=False):
        """[(key, module result)] for calls [(key, options)], in the calls' order."""
        if not calls:
            return []
        if not self._on_controller():
            results = []
            for key, args in calls:  # a remote connection: one at a time, through Ansible's own path
                args = _with_defaults(module_name, self._task, dict(args), self._templar)
                results.append((key, self._execute_module(module_name=module_name, module_args=args, task_vars=task_vars)))
            return results
        prepared = [(key, self._prepare(module_name, args, task_vars, check_mode, no_log)) for key, args in calls]
        parallel = max(1, min(len(prepared), self._max_parallel))
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            outputs = list(pool.map(lambda item: self._run_local(item[1][1]), prepared))
        results = []
        for (key, (_args, bits)), output in zip(prepared, outputs):
            self._used_interpreter = bits.shebang
            data = self._parse_returned_data(output, bits.serialization_profile)
            remove_internal_keys(data)
            results.append((key, plain(data)))
        return results

    def _run_batches(self, module_name, calls, task_vars, args):
        """[(batch, module result)]: a module taking `batches` (batch_engine.MODULES_TAKING_BATCHES), on the
        controller, gets several batches per process, over at most `processes` processes (by default the smaller
        of max_parallel and the CPUs, at least 2); any other module runs once per batch."""
        if module_name not in engine.MODULES_TAKING_BATCHES or len(calls) < 2 or not self._on_controller():
            return list(self._run_modules(module_name, calls, task_vars))
        processes = int(args.get("processes") or min(self._max_parallel, max(2, os.cpu_count() or 2)))
        grouped = engine.process_calls(calls, processes)
        outcomes = []
        for batches, result in self._run_modules(module_name, grouped, task_vars):
            outcomes.extend(engine.batch_results(batches, result))
        return outcomes

    # -- the run-wide stages ------------------------------------------------------------------------------
    def _place(self, args, task_vars):
        """(run, the incident's lines). An incident id the modules would refuse stops the run, and so does an instance
        contained under another incident when no incident id was given (module_utils/incident.py): nothing placed."""
        problem = incident_id_problem(args.get("incident"))
        if problem:
            raise AnsibleActionFail(f"{problem}: nothing was changed")
        hosts = list(task_vars["ansible_play_hosts"])
        hostvars = HostVariablesOnce(task_vars["hostvars"])
        plan = incident_plan(hosts, hostvars, args.get("incident"), bool(args.get("incident_given")))
        if plan["refuse"]:
            raise AnsibleActionFail(plan["refuse"], result={"incident_lines": plan["lines"]})
        try:
            return engine.place_run(hosts, hostvars, args.get("incident"), int(args["size"]) if args.get("size") else None,
                                    args.get("evidence_stages") or (), bool(args.get("by_leader")),
                                    args.get("started")), plan["lines"]
        except engine.BatchError as exc:
            raise AnsibleActionFail(f"cloudsec.guardduty.batch_stage: {exc}", result={"incident_lines": plan["lines"]}) from None

    def _leader_options(self, run, args, task_vars, hosts):
        """Each current batch's leader's role options checked, every leader in this one task (module_utils/batch_engine.py
        refused_leader_parts): a batch whose leader's options are refused is recorded as failed, nothing changed for it,
        and its leader is not among the run's `leaders`, the hosts of the next play (roles/isolate tasks/place.yml)."""
        spec, checks, check_values = (plain(args.get(k) or {}) for k in ("argument_spec", "checks", "check_values"))
        here = task_vars.get("inventory_hostname")
        refused = {}
        for batch in run["current"]:
            leader = engine.batch_leader(batch)
            variables = task_vars if leader == here else self._host_task_vars(leader, task_vars)
            templar = self._templar.copy_with_new_env(available_variables=variables)

            def read(name, variables=variables, templar=templar):
                if name not in variables:
                    raise KeyError(name)
                return plain(templar.template(variables[name]))

            problems = leader_option_problems(spec, read, checks, check_values)
            if problems:
                refused[leader] = problems
        run = engine.record_run(run, "options", engine.refused_leader_parts(run["current"], refused), hosts)
        run["leaders"] = [engine.batch_leader(batch) for batch in run["current"]]
        shown = [{"item": leader, "failed_batch": True, "msg": "; ".join(problems)} for leader, problems in refused.items()]
        self._warnings.extend(f"{leader}: its batch is not worked on, its options were refused: {'; '.join(problems)}"
                              for leader, problems in refused.items())
        return run, shown, refused

    def _host_task_vars(self, host, task_vars):
        """The variables `host` would run this task with, as the strategy computes them for its worker (the play's and
        the role's, the inventory's, its facts and the extra vars), without a worker forked for it."""
        hostvars = task_vars["hostvars"]
        return hostvars._variable_manager.get_vars(  # pylint: disable=protected-access
            play=self._task._parent._play, host=hostvars._inventory.get_host(host), task=self._task,  # pylint: disable=protected-access
            _hosts=task_vars.get("ansible_play_batch"), _hosts_all=task_vars.get("ansible_play_hosts_all"))

    def _preflight(self, run, args, task_vars, hosts):
        """Each responder role assumed once for the run, each batch's credentials proven (sts:GetCallerIdentity)."""
        run = dict(run, current=engine.remaining_batches(run["current"], run["record"], hosts, run.get("by_leader", False),
                                                         tuple(run.get("evidence_stages") or ())))
        credentials = read_credentials(run.get("credentials_file"))
        verify = bool(args.get("verify_identity", True))
        roles = engine.roles_to_assume(run["current"], credentials)
        # The whole preflight at once: the roles assumed, then every batch's credentials proven (sts:GetCallerIdentity),
        # each phase's calls in parallel (module_utils/responder_sessions.py, _responder_sessions).
        batches = [{"key": str(i), "region": batch["region"], "role_arn": batch.get("role_arn")}
                   for i, batch in enumerate(run["current"])] if verify else []
        sessions = {}
        if roles or batches:
            options = {"session_name": engine.session_name(args.get("session_name"), run["incident"]),
                       "duration_seconds": int(args.get("session_duration") or 3600),
                       "roles": [{"role_arn": arn, "region": region} for arn, region in roles.items()],
                       "credentials": {arn: credentials[arn] for arn in {b["role_arn"] for b in batches} if arn in credentials},
                       "batches": batches}
            sessions = self._responder_sessions(options, task_vars)
        role_errors = dict(sessions.get("role_errors") or {})
        for role_arn, creds in (sessions.get("credentials") or {}).items():
            # with what AssumeRole needs again, for a run that outlives the session (_renewed)
            credentials[role_arn] = dict(session_entry(creds), region=roles.get(role_arn), session_name=options["session_name"],
                                         duration_seconds=options["duration_seconds"])
        if sessions.get("credentials"):
            run["credentials_file"] = write_credentials(run.get("credentials_file"), credentials)
        answers = {int(entry["key"]): entry for entry in sessions.get("identities") or []}
        callers = [{"results": [dict(answers[i], item=batch) for i, batch in enumerate(run["current"]) if i in answers]}]
        parts = engine.preflight_parts(run["current"], role_errors, callers, verify)
        shown = [{"item": batch, "account": (parts.get(batch["instance_ids"][0]) or {}).get("account_id"),
                  "error": (parts.get(batch["instance_ids"][0]) or {}).get("error")} for batch in run["current"]]
        return engine.record_run(run, "preflight", parts, hosts), shown

    def _responder_sessions(self, options, task_vars):
        """The sts_responder_sessions module's work over `options` (its roles, then its batches): in this process when
        modules run on the controller (_sessions_here), else one module process. Assuming a role changes nothing: check
        mode needs the sessions too. When it could not run, every role and batch it was given fails by that cause."""
        sessions = self._sessions_here(options) if self._on_controller() else None
        if sessions is None:
            ((_key, sessions),) = self._run_modules(RESPONDER_SESSIONS, [(None, options)], task_vars, check_mode=False,
                                                    no_log=True)
        if sessions.get("failed"):
            cause = sessions.get("msg") or "no answer"
            sessions = {"role_errors": {role["role_arn"]: cause for role in options["roles"]},
                        "identities": [dict(batch, account=None, msg=cause) for batch in options["batches"]]}
        return sessions

    def _sessions_here(self, options):
        """The preflight's STS calls in this process, with the module's options (its module_defaults included) and
        the environment the module would read (plugin_utils/controller_module.py): no module process to start. None
        when the controller's Python has no boto3 (the module, run by its interpreter, may have it)."""
        try:
            from ansible_collections.cloudsec.guardduty.plugins.module_utils import responder_sessions as preflight
            from ansible_collections.cloudsec.guardduty.plugins.plugin_utils.controller_module import (
                ControllerModule, ControllerModuleFailed)
            import boto3  # noqa: F401  pylint: disable=unused-import  # aws_calls imports it only if present
        except ImportError:
            return None
        args = _with_defaults(RESPONDER_SESSIONS, self._task, dict(options), self._templar)
        try:
            return preflight.responder_sessions(ControllerModule(preflight.ARGUMENT_SPEC, args))
        except ControllerModuleFailed as exc:
            return {"failed": True, "msg": f"{RESPONDER_SESSIONS}: {exc}"}
        except Exception as exc:  # pylint: disable=broad-except  # as a module process that crashed: its batches fail by it
            return {"failed": True, "msg": f"{RESPONDER_SESSIONS}: {type(exc).__name__}: {exc}"}

    def _renewed(self, path, task_vars):
        """The run's credentials, each responder role whose session ends within RENEW_BEFORE_SECONDS assumed again
        first (_responder_sessions). A role that cannot be assumed again keeps its session: while it
        lasts its instances go on, after it their calls fail by name (ExpiredToken), as any refusal does."""
        credentials = read_credentials(path)
        due = engine.sessions_to_renew(credentials, time.time())
        if not due:
            return credentials
        by_session = {}
        for entry in due:
            by_session.setdefault((entry["session_name"], entry["duration_seconds"]), []).append(
                {"role_arn": entry["role_arn"], "region": entry["region"]})
        for (name, duration), roles in sorted(by_session.items()):
            sessions = self._responder_sessions({"session_name": name, "duration_seconds": duration, "roles": roles,
                                                 "credentials": {}, "batches": []}, task_vars)
            for role_arn, creds in (sessions.get("credentials") or {}).items():
                credentials[role_arn] = dict(credentials[role_arn], **session_entry(creds))
            for role_arn, cause in (sessions.get("role_errors") or {}).items():  # each keeps its session
                self._warnings.append(f"{role_arn}: the session ends at {credentials[role_arn].get('expiration')} and could "
                                      f"not be assumed again: {cause}")
        write_credentials(path, credentials)
        return credentials

    # -- a module's stage ---------------------------------------------------------------------------------
    def _stage(self, run, stage, args, task_vars, hosts):
        module_name = args.get("module")
        if not module_name:
            if args.get("recorded") is None:
                raise AnsibleActionFail(f"cloudsec.guardduty.batch_stage: stage {stage} needs a module, or the parts it records")
            # parts a role decided itself (eradicate's confirmation, per host): recorded, no module
            current = {i for batch in run["current"] for i in batch["instance_ids"]}
            parts = {i: part for i, part in plain(args["recorded"]).items() if i in current}
            return engine.record_run(run, stage, parts, hosts), []
        hostvars = task_vars["hostvars"]
        answered = plain(args.get("answered") or {})
        credentials = self._renewed(run.get("credentials_file"), task_vars) if args.get("use_credentials", True) else {}
        try:
            calls = engine.stage_calls(run["current"], plain(args.get("options") or {}), hostvars,
                                       credentials, args.get("from_hosts") or (),
                                       bool(args.get("per_instance", True)), answered, bool(args.get("use_credentials", True)),
                                       bool(args.get("per_account", False)))
        except engine.BatchError as exc:
            raise AnsibleActionFail(f"cloudsec.guardduty.batch_stage: {exc}") from None
        outcomes = self._run_batches(module_name, calls, task_vars, args)
        if args.get("parts") == "findings":
            parts = engine.finding_parts(outcomes, hostvars)
        elif args.get("parts") == "records":
            parts = engine.records_parts(outcomes, args.get("record_tags") or [])
        elif args.get("parts") == "support":
            parts = engine.support_parts(outcomes)
        else:
            parts = engine.stage_parts([{"results": [dict(result, item=batch) for batch, result in outcomes]}])
        parts.update({i: part for i, part in answered.items()
                      if any(i in batch["instance_ids"] for batch in run["current"])})
        if self._task.check_mode and args.get("planned_by"):
            parts = {i: engine.planned_termination(part, (run["record"].get(i) or {}).get(args["planned_by"]))
                     for i, part in parts.items()}
        return engine.record_run(run, stage, parts, hosts), [shown_result(batch, result) for batch, result in outcomes]

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        stage = args.get("stage")
        if not stage:
            raise AnsibleActionFail("cloudsec.guardduty.batch_stage: stage is required")
        self._max_parallel = int(args.get("max_parallel") or max(1, min(DEFAULT_PARALLEL, context.CLIARGS.get("forks") or DEFAULT_PARALLEL)))
        hosts = list(task_vars.get("ansible_play_hosts") or [])
        self._warnings = []
        if stage == "place":
            (run, incident_lines), shown = self._place(args, task_vars), []
            result["incident_lines"] = incident_lines
        else:
            run = run_state(task_vars)
            if not run:
                raise AnsibleActionFail("cloudsec.guardduty.batch_stage: no run: place the hosts first (stage: place)")
            if stage == "options":
                run, shown, result["refused"] = self._leader_options(run, args, task_vars, hosts)
            elif stage == "preflight" and not args.get("module"):
                run, shown = self._preflight(run, args, task_vars, hosts)
            else:
                run, shown = self._stage(run, stage, args, task_vars, hosts)
        facts = {engine.RUN_FACT: engine.encode_run(run), engine.OUTCOMES_FACT: ""}  # the outcomes of an earlier state go
        result.update(changed=any(r.get("changed") for r in shown), results=shown, stage=stage,
                      failures=run["failures"], ansible_facts=facts)
        if self._warnings:
            result["warnings"] = self._warnings
        diffs = [d for r in shown for d in (r.get("diff") if isinstance(r.get("diff"), list) else [r.get("diff")]) if d]
        if diffs:
            result["diff"] = diffs
        return result
