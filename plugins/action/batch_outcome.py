# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Each host's own outcome of a run, from the run's record (documented in plugins/modules/batch_outcome.py)."""

import json

from ansible.plugins.action import ActionBase

from ansible_collections.cloudsec.guardduty.plugins.action.batch_stage import forget_credentials, plain, run_state
from ansible_collections.cloudsec.guardduty.plugins.module_utils import batch_engine as engine


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("gather_from", "forget_credentials"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        if args.get("gather_from") is not None:
            # Once for the play (run_once): the run as the hosts that ran its stages left it, for every host
            # of this play, with every instance's outcome computed once; the responder roles' credentials are
            # forgotten, the run's AWS work being over.
            sources = [h for h in (args.get("gather_from") or []) if h in task_vars["hostvars"]]
            run = None
            if sources:
                facts = task_vars["hostvars"][sources[0]].get("ansible_facts") or {}
                run = engine.decode_run(plain(facts.get(engine.RUN_FACT)))
            run = run or run_state(task_vars)
            if run and args.get("forget_credentials", True):
                forget_credentials(run.get("credentials_file"))
                run["credentials_file"] = None
            facts = {engine.RUN_FACT: engine.encode_run(run),
                     engine.OUTCOMES_FACT: json.dumps(engine.run_outcomes(run), separators=(",", ":"))} if run else {}
            result.update(changed=False, ansible_facts=facts)
            return result
        # Per host: its outcome looked up in the outcomes computed once above, not computed from the whole run again.
        outcomes = (task_vars.get("ansible_facts") or {}).get(engine.OUTCOMES_FACT)
        host, instance_id = task_vars.get("inventory_hostname"), task_vars.get("instance_id")
        run = None
        if outcomes:
            failed, changed, message = engine.outcome_of(json.loads(plain(outcomes)), host, instance_id)
        else:
            run = run_state(task_vars)
            failed, changed, message = engine.host_outcome(run, host, instance_id)
        if args.get("forget_credentials", False):
            run = run or run_state(task_vars)
            if run:
                forget_credentials(run.get("credentials_file"))
        result.update(failed=failed, changed=changed, msg=message)
        return result
