# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Test-only callback: at each task's start, which modules' AnsiballZ payloads are already in the run's payload
cache (ansible-core keeps one per run, in DEFAULT_LOCAL_TMP/ansiballz_cache, named after the module's FQN). It
writes {task name: [module FQNs]} to the file PAYLOAD_CACHE_FILE names, at the end of the run."""

import json
import os

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: payload_cache
type: aggregate
short_description: which module payloads were built before each task (tests only)
description:
  - Writes, for each task, the modules whose AnsiballZ payloads the run had already built when the task started.
requirements:
  - enabled by ANSIBLE_CALLBACKS_ENABLED and ANSIBLE_CALLBACK_PLUGINS; the file named by PAYLOAD_CACHE_FILE
"""

PREFIX = "ansible_collections."


def cached_modules(cache_dir):
    try:
        names = os.listdir(cache_dir)
    except FileNotFoundError:
        return []
    modules = set()
    for name in names:
        if name.endswith((".lock", "-part")):
            continue
        fqn = name.split("-", 1)[0]  # <module FQN>-<compression>-<extensions>
        if fqn.startswith(PREFIX):
            namespace, collection, _plugins, _modules, module = fqn[len(PREFIX):].split(".")
            modules.add(f"{namespace}.{collection}.{module}")
    return sorted(modules)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "payload_cache"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.seen = {}

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.seen[task.get_name()] = cached_modules(os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache"))

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("PAYLOAD_CACHE_FILE")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                json.dump(self.seen, out)
