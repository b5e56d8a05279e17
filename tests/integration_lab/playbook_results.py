"""Reading a playbook run (LabClient.run_playbook's parsed JSON callback output) and its journal."""

READS = ("Describe", "Get", "List")
INVENTORY_SESSION = "cloudsec-guardduty-inventory"  # plugins/inventory/guardduty.py's RoleSessionName


def task(run, name):
    """A task's per-host results; the JSON callback prefixes role tasks with their role's name."""
    found = [hosts for key, hosts in run["tasks"].items() if key == name or key.endswith(" : " + name)]
    assert found, (name, list(run["tasks"]))
    return found[0]


def writes(entries):
    """Every request that could change something (role assumption changes nothing). A long poll of an earlier test
    in flight at the mark is not among the entries (LabClient.journal: only requests started after the mark)."""
    return [e for e in entries if not e["action"].startswith(READS) and e["action"] != "AssumeRole"]


def responder_sessions(entries):
    """The roles' AssumeRole calls (the inventory plugin assumes roles too, under its own session name)."""
    return [e for e in entries if e["action"] == "AssumeRole" and e["params"].get("RoleSessionName") != INVENTORY_SESSION]


def between(lab, start, end):
    """The journal entries after mark `start`, up to mark `end`."""
    return [e for e in lab.journal(start) if e["seq"] <= end]
