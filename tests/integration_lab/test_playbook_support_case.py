"""playbooks/support_case.yml (steps 4 and 5 of the procedure, on their own) end to end against the lab: one
AWS Support case per account, once per incident, and nothing else changed."""

import pathlib

from tests.integration_lab.playbook_results import task, writes

REPO = pathlib.Path(__file__).resolve().parents[2]
PLAYBOOK = str(REPO / "playbooks/support_case.yml")
INVENTORY = str(REPO / "docs/examples/lab.guardduty.yml")
ADMIN, MEMBER = "123456789012", "111122223333"
COMPROMISED = {"web-1": ADMIN, "app-1": ADMIN, "api-1": ADMIN, "worker-1": MEMBER}
OUTCOME = "Batches | fail the instances whose stage failed"


def test_one_case_per_account_once_per_incident_and_nothing_else_changes(lab):
    lab.reset("demo")
    mark = lab.mark()
    check = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="compromised", check=True,
                             extra_vars={"incident_id": "INC-SUP"})
    assert check["rc"] == 0 and writes(lab.journal(mark)) == []

    mark = lab.mark()
    run = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="compromised", extra_vars={"incident_id": "INC-SUP"})
    journal = lab.journal(mark)
    assert run["rc"] == 0 and sorted(run["stats"]) == sorted(COMPROMISED)
    # Cases only, one per account, each naming that account's instances, in that account (its responder role).
    assert {e["action"] for e in writes(journal)} == {"CreateCase"}
    created = [e for e in journal if e["action"] == "CreateCase" and e["outcome"] == "ok"]
    assert sorted(e["account"] for e in created) == sorted({ADMIN, MEMBER})
    for entry in created:
        assert entry["params"]["subject"].startswith("[INC-SUP] ")
        body = entry["params"]["communicationBody"]
        for name, account in COMPROMISED.items():
            assert (lab.instance(name)["id"] in body) == (account == entry["account"]), (name, entry["account"])
    # Every host has its own outcome, changed: its account's case was opened.
    outcome = task(run, OUTCOME)
    assert sorted(outcome) == sorted(COMPROMISED)
    assert all(result.get("changed") and not result.get("failed") for result in outcome.values()), outcome

    # A rerun of the incident finds the cases by their subject and opens none.
    mark = lab.mark()
    again = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="compromised", extra_vars={"incident_id": "INC-SUP"})
    assert again["rc"] == 0 and [e for e in lab.journal(mark) if e["action"] == "CreateCase"] == []
    assert not any(result.get("changed") for result in task(again, OUTCOME).values())


def test_an_account_without_a_support_plan_fails_its_hosts_by_name_when_asked(lab):
    lab.reset("demo")
    lab.faults({"forced": [{"service": "support", "code": "SubscriptionRequiredException",
                            "message": "AWS Premium Support Subscription is required to use this service."}]})
    try:
        run = lab.run_playbook(PLAYBOOK, inventory=INVENTORY, limit="web-1,worker-1", expect_rc=(2,),
                               extra_vars={"incident_id": "INC-SUP2", "support_case_fail_without_plan": True})
    finally:
        lab.faults({})
    outcome = task(run, OUTCOME)
    for name in ("web-1", "worker-1"):
        assert outcome[name]["failed"] is True, outcome[name]
        assert lab.instance(name)["id"] in outcome[name]["msg"] and "support failed" in outcome[name]["msg"], outcome[name]
        assert "SubscriptionRequiredException" in outcome[name]["msg"], outcome[name]
