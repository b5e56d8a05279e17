# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Each host's own outcome of a run, from the run's record (documented in plugins/modules/batch_outcome.py)."""

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
            # of this play; the responder roles' credentials are forgotten, the run's AWS work being over.
            sources = [h for h in (args.get("gather_from") or []) if h in task_vars["hostvars"]]
            run = None
            if sources:
                facts = task_vars["hostvars"][sources[0]].get("ansible_facts") or {}
                run = plain(facts.get(engine.RUN_FACT)) if facts.get(engine.RUN_FACT) else None
            run = run or run_state(task_vars)
            if run and args.get("forget_credentials", True):
                forget_credentials(run.get("credentials_file"))
                run["credentials_file"] = None
            result.update(changed=False, ansible_facts={engine.RUN_FACT: run} if run else {})
            return result
        run = run_state(task_vars)
        failed, changed, message = engine.host_outcome(run, task_vars.get("inventory_hostname"), task_vars.get("instance_id"))
        if run and args.get("forget_credentials", False):
            forget_credentials(run.get("credentials_file"))
        result.update(failed=failed, changed=changed, msg=message)
        return result
