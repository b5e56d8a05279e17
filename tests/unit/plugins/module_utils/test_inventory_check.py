import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils.inventory_check import InventoryCheckError, checked_hosts


def test_hosts_in_the_inventory_let_the_run_start():
    assert checked_hosts("compromised", {"all": ["web-1"], "ungrouped": []}) == "compromised"


def test_loaded_guardduty_inventory_without_findings_lets_the_run_start():
    # no compromised instance is a normal, green run: the group `guardduty` says the inventory loaded
    assert checked_hosts("compromised", {"all": [], "ungrouped": [], "guardduty": []}) == "compromised"


def test_inventory_that_did_not_load_fails_the_run_naming_its_sources():
    with pytest.raises(InventoryCheckError) as exc:
        checked_hosts("compromised", {"all": [], "ungrouped": []}, ["/srv/prod.yml", "/srv/other"])
    assert "/srv/prod.yml, /srv/other" in str(exc.value) and "Nothing was changed" in str(exc.value)


def test_empty_inventory_accepted_when_asked():
    assert checked_hosts("compromised", {"all": []}, ["x"], allow_empty=True) == "compromised"
