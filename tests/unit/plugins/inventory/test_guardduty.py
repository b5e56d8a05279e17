# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The guardduty inventory plugin, in the style of amazon.aws's test_aws_ec2.py.

AWS answers come from FakeClient, which checks every request and response against botocore's GuardDuty,
EC2 and STS models (parameter names, types, MaxResults and FindingIds bounds) and the expected
parameters, whatever the order the plugin's threads call in.
"""

import copy
import gc
import json
import threading

import pytest

boto3 = pytest.importorskip("boto3")
botocore = pytest.importorskip("botocore")

from botocore import xform_name  # noqa: E402
from botocore.validate import validate_parameters  # noqa: E402

from ansible.errors import AnsibleError  # noqa: E402
from ansible.inventory.data import InventoryData  # noqa: E402
from ansible.parsing.dataloader import DataLoader  # noqa: E402
from ansible.template import Templar  # noqa: E402

from ansible_collections.cloudsec.guardduty.plugins.inventory.guardduty import InventoryModule  # noqa: E402
from ansible_collections.cloudsec.guardduty.plugins.module_utils import findings as fnd  # noqa: E402

from ansible_collections.cloudsec.guardduty.tests.unit.plugins.module_utils.test_findings import DNS, SSH_INBOUND, finding, instance_details  # noqa: E402

ADMIN = "123456789012"
MEMBER = "111122223333"
WEB = "i-0000000000000web1"
WORKER = "i-000000000worker1"


DEFAULTS = {
    "plugin": "cloudsec.guardduty.guardduty", "regions": [], "accounts": [], "use_current_credentials": True,
    "account_role_arn": "arn:{partition}:iam::{account_id}:role/GuardDutyResponder",
    "responder_role_arn": "arn:{partition}:iam::{account_id}:role/GuardDutyResponder",
    "min_severity": None, "finding_types": [], "exclude_finding_types": [], "updated_since": None, "archived": "exclude",
    "tags": {}, "check_instances": False, "conversion_check": False, "hostnames": ["instance-id"], "hostvars_prefix": "guardduty_",
    "max_concurrency": 1, "strict": False, "compose": {}, "groups": {}, "keyed_groups": [],
    "access_key": "AKIDEXAMPLE", "secret_key": "secret", "session_token": None, "profile": None,
    "endpoint_url": None, "region": "us-east-1", "assume_role_arn": None, "aws_config": None,
    "validate_certs": True, "aws_ca_bundle": None, "cache": False,
}


def make_plugin(**options):
    # As amazon.aws's test_aws_ec2.py does: the options dict stands for the parsed inventory file.
    plugin = InventoryModule()
    plugin.templar = Templar(loader=DataLoader())
    plugin.inventory = InventoryData()
    plugin._options = dict(DEFAULTS, **options)
    return plugin


class FakeClient:
    """A botocore client stand-in that answers by operation and exact parameters, in any order (the plugin
    calls from several threads). Parameters and responses are validated against botocore's service model,
    as botocore's Stubber does."""

    def __init__(self, service):
        self.model = botocore.session.get_session().get_service_model(service)
        self.operations = {xform_name(op): op for op in self.model.operation_names}
        self.expected = {}
        self.lock = threading.Lock()

    def _key(self, method, params):
        return method, json.dumps(params, sort_keys=True) if params is not None else None

    def add_response(self, method, response, expected_params=None):
        op = self.model.operation_model(self.operations[method])
        validate_parameters(response, op.output_shape)
        self.expected.setdefault(self._key(method, expected_params), []).append(("ok", response))

    def add_client_error(self, method, code, message, status, expected_params=None):
        error = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
        self.expected.setdefault(self._key(method, expected_params), []).append(("error", error))

    def __getattr__(self, method):
        if method not in self.operations:
            raise AttributeError(method)
        return lambda **params: self._call(method, params)

    def _call(self, method, params):
        validate_parameters(params, self.model.operation_model(self.operations[method]).input_shape)
        with self.lock:
            queue = self.expected.get(self._key(method, params)) or self.expected.get(self._key(method, None))
            if not queue:
                raise AssertionError(f"unexpected call {method}({params})")
            kind, value = queue.pop(0)
        if kind == "error":
            raise botocore.exceptions.ClientError(value, self.operations[method])
        return copy.deepcopy(value)

    def assert_no_pending_responses(self):
        pending = {k: v for k, v in self.expected.items() if v}
        assert not pending, f"expected calls not made: {list(pending)}"


class Clients:
    """Fake clients by (service, region, account); every expected call must be made."""

    def __init__(self):
        self.clients = {}

    def stub(self, service, region, account=ADMIN):
        key = (service, region, account)
        if key not in self.clients:
            self.clients[key] = FakeClient(service)
        return self.clients[key]

    def install(self, plugin):
        def client(creds, service, region):
            account = creds.get("account", ADMIN)
            return self.clients[(service, region, account)]

        plugin._client = client
        plugin._base_credentials = lambda: {"aws_access_key_id": "AKIDEXAMPLE"}
        plugin._assume = lambda role_arn: {"aws_access_key_id": "ASIA", "account": role_arn.split(":")[4]}

    def assert_done(self):
        for client in self.clients.values():
            client.assert_no_pending_responses()


def identity(clients, account=ADMIN, partition="aws"):
    clients.stub("sts", "us-east-1").add_response(
        "get_caller_identity", {"UserId": "AIDA", "Account": account, "Arn": f"arn:{partition}:iam::{account}:user/lab"})


def region_with_findings(clients, region, found, account=ADMIN, selection=None, page=2):
    """ListDetectors, one paginated ListFindings per severity band, GetFindings per 50 ids of a band."""
    stub = clients.stub("guardduty", region, account)
    stub.add_response("list_detectors", {"DetectorIds": ["d1"]})
    for crit in fnd.listing_criteria(selection or fnd.normalize_selection()):
        band = crit["Criterion"]["severity"]
        low, high = band.get("GreaterThanOrEqual", 0), band.get("LessThan")
        in_band = [f for f in found if f["Severity"] >= low and (high is None or f["Severity"] < high)]
        ids = [f["Id"] for f in in_band]
        pages = [ids[i:i + page] for i in range(0, len(ids), page)] or [[]]
        for index, chunk in enumerate(pages):
            expected = {"DetectorId": "d1", "FindingCriteria": crit, "MaxResults": 50}
            if index:
                expected["NextToken"] = f"t{low}-{index}"
            response = {"FindingIds": chunk}
            if index + 1 < len(pages):
                response["NextToken"] = f"t{low}-{index + 1}"
            stub.add_response("list_findings", response, expected)
        for start in range(0, len(ids), 50):
            batch = in_band[start:start + 50]
            stub.add_response("get_findings", {"Findings": batch},
                              {"DetectorId": "d1", "FindingIds": [f["Id"] for f in batch]})


def demo(region="us-east-1"):
    web = instance_details(WEB)
    worker = instance_details(WORKER, tags={"Name": "worker-1", "Environment": "staging"})
    return [
        finding("ssh", "UnauthorizedAccess:EC2/SSHBruteForce", 2.0, instance=web, action=SSH_INBOUND, region=region),
        finding("cc", "Backdoor:EC2/C&CActivity.B", 8.0, instance=web, region=region),
        finding("miner", "CryptoCurrency:EC2/BitcoinTool.B!DNS", 5.0, instance=worker, account=MEMBER, action=DNS,
                region=region),
    ]


def test_verify_file_suffixes():
    plugin = InventoryModule()
    assert plugin.verify_file("/nonexistent/lab.guardduty.yml") is False  # must exist
    assert plugin.verify_file(__file__) is False


def test_verify_file_accepts_guardduty_yml_and_any_file_naming_the_plugin(tmp_path):
    plugin = InventoryModule()
    for name in ("lab.guardduty.yml", "guardduty.yaml", "prod.yml"):
        (tmp_path / name).write_text("plugin: cloudsec.guardduty.guardduty\n")
    (tmp_path / "aws_ec2.yml").write_text("plugin: amazon.aws.aws_ec2\n")
    (tmp_path / "hosts.ini").write_text("plugin: cloudsec.guardduty.guardduty\n")
    assert plugin.verify_file(str(tmp_path / "lab.guardduty.yml"))
    assert plugin.verify_file(str(tmp_path / "guardduty.yaml"))
    # a misnamed file that names this plugin is read (refusing it ended a run green with nothing contained)
    assert plugin.verify_file(str(tmp_path / "prod.yml"))
    assert not plugin.verify_file(str(tmp_path / "aws_ec2.yml"))
    assert not plugin.verify_file(str(tmp_path / "hosts.ini"))


def test_query_reads_every_region_pages_and_reports_a_region_without_detector():
    plugin = make_plugin(regions=["us-east-1", "eu-west-1"])
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())
    clients.stub("guardduty", "eu-west-1").add_response("list_detectors", {"DetectorIds": []})
    clients.install(plugin)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert [(h["instance"]["account_id"], h["instance"]["instance_id"]) for h in results["hosts"]] == \
        [(MEMBER, WORKER), (ADMIN, WEB)]
    assert results["problems"] == [f"GuardDuty inventory: account {ADMIN}: GuardDuty has no detector (not enabled) "
                                   "in eu-west-1; no findings from there"]


def test_more_than_fifty_findings_are_fetched_fifty_at_a_time():
    many = [finding(f"f{i:03d}", instance=instance_details(f"i-{i:017x}")) for i in range(120)]
    plugin = make_plugin(regions=["us-east-1"], max_concurrency=4)
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", many, page=50)
    clients.install(plugin)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert len(results["hosts"]) == 120


def test_filters_go_to_the_criteria_and_are_checked_again():
    plugin = make_plugin(regions=["us-east-1"])
    clients = Clients()
    identity(clients)
    selection = fnd.normalize_selection(min_severity=4, finding_types=["Backdoor"])
    region_with_findings(clients, "us-east-1", demo(), selection=selection)
    clients.install(plugin)
    results = plugin._query(selection)
    clients.assert_done()
    (web,) = results["hosts"]
    assert [f["id"] for f in web["findings"]] == ["cc"]


def test_every_enabled_region_when_none_given():
    plugin = make_plugin()
    clients = Clients()
    identity(clients)
    clients.stub("ec2", "us-east-1").add_response("describe_regions", {"Regions": [
        {"RegionName": "us-east-1", "Endpoint": "ec2.us-east-1.amazonaws.com", "OptInStatus": "opt-in-not-required"},
        {"RegionName": "eu-west-1", "Endpoint": "ec2.eu-west-1.amazonaws.com", "OptInStatus": "opt-in-not-required"}]})
    region_with_findings(clients, "us-east-1", demo()[:2])
    region_with_findings(clients, "eu-west-1", demo("eu-west-1")[2:])
    clients.install(plugin)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert sorted(h["instance"]["region"] for h in results["hosts"]) == ["eu-west-1", "us-east-1"]
    assert results["problems"] == []


def test_access_denied_names_account_region_and_permission_and_the_rest_loads():
    plugin = make_plugin(regions=["us-east-1", "eu-west-1"])
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())
    eu = clients.stub("guardduty", "eu-west-1")
    eu.add_response("list_detectors", {"DetectorIds": ["d1"]})
    for dummy in fnd.SEVERITY_BANDS:
        eu.add_client_error("list_findings", "AccessDeniedException", "not authorized", 403)
    clients.install(plugin)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert len(results["hosts"]) == 2
    (message,) = results["problems"]
    assert message.startswith(f"GuardDuty inventory: account {ADMIN} region eu-west-1: missing permission for "
                              "guardduty:ListFindings")
    assert message.endswith("(AccessDeniedException)")
    with pytest.raises(AnsibleError, match="eu-west-1: missing permission"):
        make_plugin(strict=True)._report(results["problems"], cached=False)


def test_listed_accounts_are_read_through_their_role_and_duplicates_count_once():
    plugin = make_plugin(regions=["us-east-1"], accounts=[MEMBER, {"account_id": "444455556666",
                                                                   "role_arn": "arn:aws:iam::444455556666:role/Audit"}])
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())  # the administrator sees the member's finding too
    region_with_findings(clients, "us-east-1", demo()[2:], account=MEMBER)
    clients.stub("guardduty", "us-east-1", "444455556666").add_client_error(
        "list_detectors", "UnrecognizedClientException", "The security token included in the request is invalid.", 403)
    clients.install(plugin)
    assumed = []
    original = plugin._assume
    plugin._assume = lambda arn: assumed.append(arn) or original(arn)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert sorted(assumed) == ["arn:aws:iam::111122223333:role/GuardDutyResponder", "arn:aws:iam::444455556666:role/Audit"]
    worker = [h for h in results["hosts"] if h["instance"]["account_id"] == MEMBER]
    assert len(worker) == 1 and worker[0]["finding_count"] == 1
    (message,) = results["problems"]
    assert "account 444455556666 region us-east-1" in message and "not enabled" in message


def test_check_instances_drops_gone_instances_and_uses_the_responder_role_for_members():
    plugin = make_plugin(regions=["us-east-1"], check_instances=True)
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())
    clients.stub("ec2", "us-east-1").add_response(
        "describe_instances", {"Reservations": [{"ReservationId": "r-1", "OwnerId": ADMIN, "Instances": [{
            "InstanceId": WEB, "State": {"Code": 16, "Name": "running"}, "InstanceType": "t3.micro",
            "Placement": {"AvailabilityZone": "us-east-1b"},
            "NetworkInterfaces": [{"NetworkInterfaceId": "eni-0isolated", "Attachment": {"DeviceIndex": 0},
                                   "Groups": [{"GroupId": "sg-0isolation", "GroupName": "isolation"}]}]}]}]},
        {"Filters": [{"Name": "instance-id", "Values": [WEB]}]})
    clients.stub("ec2", "us-east-1", MEMBER).add_response(
        "describe_instances", {"Reservations": [{"ReservationId": "r-2", "OwnerId": MEMBER, "Instances": [{
            "InstanceId": WORKER, "State": {"Code": 48, "Name": "terminated"}}]}]},
        {"Filters": [{"Name": "instance-id", "Values": [WORKER]}]})
    clients.install(plugin)
    warnings = []
    plugin.warn = warnings.append
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    (web,) = results["hosts"]
    assert web["instance"]["network_interfaces"][0]["security_groups"][0]["group_id"] == "sg-0isolation"
    assert web["instance"]["availability_zone"] == "us-east-1b"
    assert warnings == [f"GuardDuty inventory: account {MEMBER} region us-east-1: {WORKER} dropped: instance is terminated"]


def populated(**options):
    plugin = make_plugin(regions=["us-east-1"], **options)
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())
    clients.install(plugin)
    results = plugin._query(fnd.normalize_selection())
    plugin._populate(results["hosts"], results["partition"])
    return plugin.inventory


def test_hosts_are_made_without_collections_then_frozen_and_collection_resumes():
    plugin = make_plugin(regions=["us-east-1"])
    clients = Clients()
    identity(clients)
    region_with_findings(clients, "us-east-1", demo())
    clients.install(plugin)
    read, collecting = plugin._query, []

    def query(selection):
        collecting.append(gc.isenabled())
        return read(selection)

    plugin._query = query
    frozen = gc.get_freeze_count()
    try:
        plugin._load("lab.guardduty.yml", False, fnd.normalize_selection())
        assert collecting == [False] and gc.isenabled()
        assert gc.get_freeze_count() > frozen  # the hosts and their variables, out of later scans
        assert sorted(plugin.inventory.hosts) == sorted([WEB, WORKER])
    finally:
        gc.enable()
        gc.unfreeze()


def test_populate_hosts_groups_and_vars():
    inv = populated()
    assert sorted(inv.hosts) == sorted([WEB, WORKER])
    groups = {name: sorted(h.name for h in group.get_hosts()) for name, group in inv.groups.items()}
    assert groups["compromised"] == sorted([WEB, WORKER])
    assert groups["severity_high"] == [WEB] and groups["severity_medium"] == [WORKER]
    assert groups["finding_backdoor"] == [WEB] and groups["finding_unauthorized_access"] == [WEB]
    assert groups["finding_crypto_currency"] == [WORKER]
    assert groups["account_123456789012"] == [WEB] and groups["account_111122223333"] == [WORKER]
    assert groups["region_us_east_1"] == sorted([WEB, WORKER])
    web = inv.get_host(WEB).vars
    assert web["instance_id"] == WEB and web["account_id"] == ADMIN and web["region"] == "us-east-1"
    assert web["responder_role_arn"] == "arn:aws:iam::123456789012:role/GuardDutyResponder"
    assert web["ansible_connection"] == "local"
    assert web["ansible_python_interpreter"] == "{{ ansible_playbook_python }}"
    assert web["guardduty_max_severity"] == 8.0
    assert inv.get_host(WORKER).vars["responder_role_arn"] == "arn:aws:iam::111122223333:role/GuardDutyResponder"


def trusted(expression):
    # expressions read from an inventory file are trusted templates; these stand for them
    try:
        from ansible.template import trust_as_template
    except ImportError:  # ansible-core < 2.19
        return expression
    return trust_as_template(expression)


def test_constructed_options_and_hostnames():
    inv = populated(hostnames=["tag:Name"], hostvars_prefix="gd_", responder_role_arn="arn:aws:iam::{account_id}:role/IR",
                    compose={"ansible_host": trusted("gd_private_ip_address")},
                    groups={"critical": trusted("gd_max_severity >= 8")},
                    keyed_groups=[{"key": trusted("gd_tags.Environment"), "prefix": "env"}])
    assert sorted(inv.hosts) == ["web-1", "worker-1"]
    web = inv.get_host("web-1").vars
    assert web["gd_instance_id"] == WEB and "guardduty_instance_id" not in web
    assert web["ansible_host"] == "10.10.1.10"
    assert web["responder_role_arn"] == "arn:aws:iam::123456789012:role/IR"
    assert [h.name for h in inv.groups["critical"].get_hosts()] == ["web-1"]
    assert [h.name for h in inv.groups["env_staging"].get_hosts()] == ["worker-1"]


def test_role_templates_take_the_partition_of_the_callers_arn():
    # GovCloud credentials: every role ARN built from a template is in aws-us-gov, even without reading the
    # current account (use_current_credentials=false still asks GetCallerIdentity, for the partition).
    plugin = make_plugin(regions=["us-east-1"], accounts=[MEMBER], use_current_credentials=False)
    clients = Clients()
    identity(clients, partition="aws-us-gov")
    region_with_findings(clients, "us-east-1", demo()[2:], account=MEMBER)
    clients.install(plugin)
    assumed = []
    original = plugin._assume
    plugin._assume = lambda arn: assumed.append(arn) or original(arn)
    results = plugin._query(fnd.normalize_selection())
    clients.assert_done()
    assert assumed == [f"arn:aws-us-gov:iam::{MEMBER}:role/GuardDutyResponder"]
    assert results["partition"] == "aws-us-gov"
    plugin._populate(results["hosts"], results["partition"])
    (host,) = plugin.inventory.hosts.values()
    assert host.vars["responder_role_arn"] == f"arn:aws-us-gov:iam::{MEMBER}:role/GuardDutyResponder"
