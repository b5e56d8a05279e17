# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Play and task times of one ansible-playbook run, for tests/bench/bench_org.py.

Keeps one line per play and per task (start, last result, results, failures), never the results
themselves: the json callback keeps every host's result of every task in memory, which at thousands of
hosts would be most of the controller memory the benchmark measures. Written as JSON to the file named
by BENCH_TIMINGS_FILE when the run's recap is reached.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: bench_timings
type: aggregate
short_description: play and task times to a JSON file (benchmarks)
description:
  - Writes the start and end of every play and task, with result and failure counts, to the file named by
    the environment variable BENCH_TIMINGS_FILE at the end of the run.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED, found through ANSIBLE_CALLBACK_PLUGINS
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timings"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record = {"playbook_start": None, "plays": [], "stats_time": None, "stats": {}}
        self.task = None

    def v2_playbook_on_start(self, playbook):
        self.record["playbook_start"] = time.time()

    def v2_playbook_on_play_start(self, play):
        self.task = None
        self.record["plays"].append({"name": play.get_name(), "start": time.time(), "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        now = time.time()
        self.task = {"name": task.get_name(), "start": now, "end": now, "results": 0, "failed": 0}
        if self.record["plays"]:
            self.record["plays"][-1]["tasks"].append(self.task)

    v2_playbook_on_handler_task_start = v2_playbook_on_task_start

    def _result(self, failed=False):
        if self.task is not None:
            self.task["end"] = time.time()
            self.task["results"] += 1
            self.task["failed"] += int(failed)

    def v2_runner_on_ok(self, result):
        self._result()

    def v2_runner_on_skipped(self, result):
        self._result()

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(failed=not ignore_errors)

    def v2_runner_on_unreachable(self, result):
        self._result(failed=True)

    def v2_playbook_on_stats(self, stats):
        self.record["stats_time"] = time.time()
        hosts = sorted(stats.processed.keys())
        self.record["stats"] = {
            "hosts": len(hosts),
            "failed_hosts": sum(1 for h in hosts if stats.failures.get(h) or stats.dark.get(h)),
            "ok": sum(stats.ok.values()), "changed": sum(stats.changed.values()),
            "failures": sum(stats.failures.values()), "unreachable": sum(stats.dark.values()),
        }
        path = os.environ.get("BENCH_TIMINGS_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.record, out)
