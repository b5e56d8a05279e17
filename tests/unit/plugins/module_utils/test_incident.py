from ansible_collections.cloudsec.guardduty.plugins.module_utils.incident import incident_plan

HOSTVARS = {
    "web-1": {"instance_id": "i-0a", "guardduty_tags": {"guardduty:incident": "INC-41", "Name": "web-1"}},
    "app-1": {"instance_id": "i-0b", "guardduty_tags": {"Name": "app-1"}},
    "db-1": {"instance_id": "i-0c"},
}


def test_run_without_incident_id_stops_over_instances_contained_under_another():
    plan = incident_plan(["web-1", "app-1", "db-1"], HOSTVARS, "gd-20261205", given=False)
    assert plan["contained_under"] == {"INC-41": ["web-1 (i-0a)"]}
    assert "give -e incident_id=<that incident>" in plan["refuse"] and "'INC-41'" in plan["refuse"]
    assert plan["lines"][0] == "incident: gd-20261205 (none given: named after today's UTC date)"


def test_given_incident_is_kept_and_other_incidents_are_said():
    plan = incident_plan(["web-1", "app-1"], HOSTVARS, "INC-42", given=True)
    assert plan["refuse"] is None
    assert plan["lines"] == ["incident: INC-42 (given)", "already under incident 'INC-41' (tag guardduty:incident): web-1 (i-0a)"]


def test_same_incident_or_no_tag_is_quiet():
    assert incident_plan(["web-1", "db-1"], HOSTVARS, "INC-41", given=True)["lines"] == ["incident: INC-41 (given)"]
    assert incident_plan(["app-1"], HOSTVARS, "gd-1", given=False)["refuse"] is None
