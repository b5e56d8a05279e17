# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
name: guardduty
short_description: EC2 instances that Amazon GuardDuty reports as potentially compromised
description:
  - One host per EC2 instance named by at least one GuardDuty finding, whatever the number of findings,
    with the instance's account, region, network interfaces, security groups, instance profile, tags,
    image and findings as host variables, and groups by severity, finding family, account and region.
  - Reads every region given (or every region enabled for the account) in the current account, and in
    every account listed in O(accounts) through a role assumed there. A GuardDuty administrator account
    sees its member accounts' findings with its own credentials.
  - Regions and accounts are queried concurrently (O(max_concurrency) threads); every AWS call is
    retried with jittered backoff on throttling and server errors.
  - A region that cannot be read (missing permission, region not enabled, no GuardDuty detector,
    endpoint unreachable) gives a warning naming the account and region and the rest still loads;
    with O(strict=true) it fails the inventory instead.
  - The inventory file is a YAML configuration file whose name ends with C(guardduty.yml) or
    C(guardduty.yaml), for example C(prod.guardduty.yml).
  - "Every host gets plain variables C(instance_id), C(region), C(account_id) and C(responder_role_arn)
    (what the collection's roles and modules key on), C(ansible_connection=local) and
    C(ansible_python_interpreter={{ ansible_playbook_python }}) (all work is AWS API calls from the
    controller), and everything else under O(hostvars_prefix)."
extends_documentation_fragment:
  - inventory_cache
  - constructed
  - amazon.aws.boto3
  - amazon.aws.common.plugins
  - amazon.aws.region.plugins
  - amazon.aws.assume_role.plugins
author:
  - cloudsec.guardduty contributors (@cloudsec)
notes:
  - Built-in groups are C(compromised) (every host), C(severity_high) (highest severity >= 7),
    C(severity_medium) (>= 4), C(severity_low), C(finding_<family>) for each finding type family
    (the part of the type before the colon, in snake case, for example C(finding_backdoor),
    C(finding_crypto_currency), C(finding_unauthorized_access), C(finding_trojan)),
    C(account_<account id>) and C(region_<region>) (for example C(region_us_east_1)), and
    C(guardduty_conversion_stuck) (see O(conversion_check); the host variable
    C(<hostvars_prefix>conversion_stuck_enis) lists the interfaces).
  - Findings that are not about an EC2 instance (S3, IAM users, EKS...) are ignored.
  - The least-privilege IAM policy for this plugin is in the collection's C(docs/iam/inventory.json).
options:
  plugin:
    description: The name of this plugin; it must be V(cloudsec.guardduty.guardduty).
    required: true
    type: str
    choices: [cloudsec.guardduty.guardduty]
  regions:
    description:
      - The regions to read GuardDuty findings from.
      - If empty (the default), every region enabled for each account (EC2 DescribeRegions).
    type: list
    elements: str
    default: []
  accounts:
    description:
      - Accounts to read in addition to (or, with O(use_current_credentials=false), instead of) the
        current credentials' account.
      - Each entry is an account id, or a dictionary with C(account_id) and optionally C(role_arn);
        without C(role_arn) the role is O(account_role_arn) formatted with the account id.
    type: list
    elements: raw
    default: []
  account_role_arn:
    description:
      - The role assumed in each account listed in O(accounts) to read its findings (and to check its
        instances), as a template where C({account_id}) is replaced by the account id and C({partition}) by
        the partition of the current credentials, read from the ARN that C(sts:GetCallerIdentity) returns
        (V(aws), V(aws-cn), V(aws-us-gov), V(aws-iso), V(aws-iso-b), V(aws-iso-e), V(aws-iso-f) or V(aws-eusc)).
    type: str
    default: "arn:{partition}:iam::{account_id}:role/GuardDutyResponder"
  use_current_credentials:
    description:
      - Read GuardDuty in the account of the current credentials (after O(assume_role_arn) if set).
      - Set to V(false) to read only the accounts listed in O(accounts).
    type: bool
    default: true
  responder_role_arn:
    description:
      - The role later tasks assume to act in each host's account, as a template where C({account_id})
        is replaced by the host's account id and C({partition}) by the partition of the current credentials
        (as in O(account_role_arn)); it becomes the C(responder_role_arn) host variable.
      - An empty string sets C(responder_role_arn) to null (act with the current credentials).
    type: str
    default: "arn:{partition}:iam::{account_id}:role/GuardDutyResponder"
  min_severity:
    description: Ignore findings whose severity is below this value (GuardDuty severities go from 1 to 10).
    type: float
  finding_types:
    description:
      - Keep only findings whose type matches one of these patterns.
      - A pattern with C(*), C(?) or C([) is a glob (V(Backdoor:EC2/*)); any other pattern is a prefix
        (V(CryptoCurrency) or V(UnauthorizedAccess:EC2/SSHBruteForce)).
    type: list
    elements: str
    default: []
  exclude_finding_types:
    description: Ignore findings whose type matches one of these patterns (same syntax as O(finding_types)); wins over it.
    type: list
    elements: str
    default: []
  updated_since:
    description:
      - Only findings updated at or after this time, a duration back from now (V(24h), V(30m), V(7d),
        V(2w), or seconds) or an ISO 8601 timestamp (V(2024-05-01T00:00:00Z)).
    type: str
  archived:
    description:
      - V(exclude) (default) for active findings only, V(only) for archived findings only, V(include) for both.
    type: str
    choices: [exclude, only, include]
    default: exclude
  tags:
    description:
      - Keep only instances carrying all these tags; a value may be a list of accepted values, and each
        value may be a glob (V(*) for any value).
    type: dict
    default: {}
  check_instances:
    description:
      - Describe the instances (EC2 DescribeInstances, up to 200 ids a call) and drop, with a warning,
        those that no longer exist or are terminated.
      - When enabled, the instance variables (network interfaces, security groups, tags, state) are
        those of the instance now rather than those the finding recorded.
      - For a member account seen through a GuardDuty administrator, the check assumes O(responder_role_arn)
        in that account; if that fails its hosts are kept unchecked, with a warning.
    type: bool
    default: true
  conversion_check:
    description:
      - With O(check_instances), put in the group C(guardduty_conversion_stuck) every host with a network
        interface on a conversion group (the all-traffic group C(cloudsec.guardduty.ec2_isolation) uses for
        an instant), where a run killed between its two moves leaves it, open to all traffic.
      - Costs one EC2 DescribeSecurityGroups call per account and region with hosts (the groups tagged
        C(guardduty:role=conversion)); the instances' groups come from the DescribeInstances call already made.
    type: bool
    default: true
  hostnames:
    description:
      - How to name hosts, in order of preference; the first with a value is used.
      - Each is one of V(instance-id), V(tag:KEY) (the value of tag KEY), V(private-ip-address),
        V(private-dns-name), V(public-ip-address), V(public-dns-name) (of the primary network interface).
      - The instance id is used when none has a value, and for an instance whose preferred name is
        already taken by another.
    type: list
    elements: str
    default: [instance-id]
  hostvars_prefix:
    description: The prefix of the host variables coming from GuardDuty and EC2.
    type: str
    default: guardduty_
  max_concurrency:
    description:
      - How many AWS calls (regions, accounts, pages and batches of findings) run at the same time.
      - A region's findings are listed in three severity bands, each a chain of pages, and each page's
        GetFindings starts while the next page is asked. With 4 regions, 12 listings are under way at once,
        so 8 threads kept every GetFindings waiting for the listings (docs/benchmarks.md, C(make bench-org)).
    type: int
    default: 16
"""

EXAMPLES = r"""
# prod.guardduty.yml: high and medium findings of the last day in two regions, with the
# current credentials (a GuardDuty administrator also sees its member accounts' findings).
plugin: cloudsec.guardduty.guardduty
regions: [us-east-1, eu-west-1]
min_severity: 4
updated_since: 24h

---
# Every enabled region of two accounts, each read through the GuardDutyResponder role assumed there.
plugin: cloudsec.guardduty.guardduty
use_current_credentials: false
accounts:
  - "111122223333"
  - account_id: "444455556666"
    role_arn: arn:aws:iam::444455556666:role/SecurityAudit
account_role_arn: "arn:{partition}:iam::{account_id}:role/GuardDutyResponder"
responder_role_arn: "arn:{partition}:iam::{account_id}:role/GuardDutyResponder"

---
# Only backdoor and crypto-mining findings on production instances, named after their Name tag,
# strict: any region that cannot be read fails the inventory.
plugin: cloudsec.guardduty.guardduty
regions: [us-east-1]
finding_types: ["Backdoor:EC2/*", CryptoCurrency]
exclude_finding_types: ["*!DNS"]
tags:
  Environment: [production, prod]
hostnames: [tag:Name, instance-id]
strict: true
keyed_groups:
  - key: guardduty_tags.Service
    prefix: service
groups:
  critical: guardduty_max_severity >= 8
compose:
  ansible_host: guardduty_private_ip_address
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/guardduty-inventory
cache_timeout: 300
"""

import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed

try:
    import boto3
    import botocore
except ImportError:
    pass  # AWSInventoryBase.parse reports the missing SDK

from ansible.errors import AnsibleError
from ansible.plugins.inventory import BaseInventoryPlugin

try:
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: inventory strings are templated as they are
    def trust_as_template(value):
        return value

from ansible_collections.amazon.aws.plugins.plugin_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.plugin_utils.inventory import AWSInventoryBase

from ansible_collections.cloudsec.guardduty.plugins.module_utils import aws_calls
from ansible_collections.cloudsec.guardduty.plugins.module_utils import findings as fnd
from ansible_collections.cloudsec.guardduty.plugins.module_utils import guardduty as gd
from ansible_collections.cloudsec.guardduty.plugins.module_utils import inventory_check
from ansible_collections.cloudsec.guardduty.plugins.module_utils import isolation
from ansible_collections.cloudsec.guardduty.plugins.module_utils.arns import caller_partition
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_code
from ansible_collections.cloudsec.guardduty.plugins.module_utils.aws_calls import error_message
from ansible_collections.cloudsec.guardduty.plugins.module_utils.instances import describe_instances
from ansible_collections.cloudsec.guardduty.plugins.module_utils.module_skeleton import long_lived

SESSION_NAME = "cloudsec-guardduty-inventory"
ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedAccess")
REGION_DISABLED = ("UnrecognizedClientException", "InvalidClientTokenId", "AuthFailure", "OptInRequired",
                   "InvalidSignatureException")


# -- the AWS layer: the floor (aws_calls.py) and GuardDuty's layer (guardduty.py), as the modules use them --


def _assume_role(sts, role_arn):
    return aws_calls.call(sts, "AssumeRole", RoleArn=role_arn, RoleSessionName=SESSION_NAME)["Credentials"]


def _describe_regions(ec2):
    return [r["RegionName"] for r in aws_calls.call(ec2, "DescribeRegions")["Regions"]]


def _describe_conversion_groups(ec2):
    """The region's security groups tagged as ec2_isolation's conversion groups (one per VPC used)."""
    return aws_calls.describe_by_filter(ec2, "DescribeSecurityGroups", "SecurityGroups", f"tag:{isolation.TAG_GROUP_ROLE}",
                                        [isolation.CONVERSION])


def _aws_error(exc):
    """AWS's error behind a GuardDutyError (guardduty.py wraps them), else the error itself."""
    return getattr(exc, "cause", None) or exc


class SourceProblem(Exception):
    """One account and region (or a whole account) could not be read."""

    def __init__(self, account, region, message, code=None):
        self.account, self.region, self.code = account, region, code
        where = f"account {account}" + (f" region {region}" if region else "")
        super().__init__(f"GuardDuty inventory: {where}: {message}" + (f" ({code})" if code else ""))


def _problem(account, region, action, exc, consequence="its findings are not in this inventory"):
    exc = _aws_error(exc)
    code = error_code(exc)
    if code in ACCESS_DENIED:
        what = f"missing permission for {action}"
    elif code in REGION_DISABLED:
        # The credentials themselves were proven first (sts:GetCallerIdentity: an unknown or expired key fails the
        # whole inventory there, by name), so this answer in one region is that region, not the key.
        what = (f"{action} refused: the region is not enabled for this account (its credentials were accepted by "
                "sts:GetCallerIdentity)")
    elif isinstance(exc, botocore.exceptions.BotoCoreError):
        what = f"{action} failed: {_first_line(exc)}"
        code = type(exc).__name__
    else:
        what = f"{action} failed: {_first_line(error_message(exc))}"
    return SourceProblem(account, region, f"{what}; {consequence}", code)


def _first_line(text, limit=200):
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[:limit] + "..."


class InventoryModule(AWSInventoryBase):
    NAME = "cloudsec.guardduty.guardduty"
    INVENTORY_FILE_SUFFIXES = ("guardduty.yml", "guardduty.yaml")

    def __init__(self):
        super().__init__()
        self._session = None
        self._clients = {}
        self._session_lock = threading.Lock()
        self._assume_lock = threading.Lock()
        self._role_locks = {}
        self._assumed = {}

    def verify_file(self, path):
        # A file that names this plugin is meant for it, whatever its name: refusing it for its suffix turned a
        # misnamed file into "no hosts matched" and rc 0 (nothing contained). The suffix still selects it alone.
        if super().verify_file(path):
            return True
        if not BaseInventoryPlugin.verify_file(self, path) or not path.endswith((".yml", ".yaml")):
            return False
        try:
            with open(path, encoding="utf-8") as handle:
                head = handle.read(65536)
        except OSError:
            return False
        return re.search(r"^plugin:\s*['\"]?" + re.escape(self.NAME) + r"['\"]?\s*$", head, flags=re.M) is not None

    def get_option(self, option, hostvars=None):
        # AWSInventoryBase templates list options with a deprecated templar argument (a warning on
        # every run with ansible-core 2.19); only `regions` is a list here, templated item by item.
        if option != "regions":
            return super().get_option(option, hostvars)
        value = BaseInventoryPlugin.get_option(self, option, hostvars)
        if not value or not self.templar:
            return value
        return [self.templar.template(v) if self.templar.is_template(v) else v for v in value]

    # -- parse: options, cache, query, populate ---------------------------------------------------

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache=cache)
        try:
            selection = fnd.normalize_selection(
                min_severity=self.get_option("min_severity"),
                finding_types=self.get_option("finding_types"),
                exclude_finding_types=self.get_option("exclude_finding_types"),
                updated_since=self.get_option("updated_since"),
                archived=self.get_option("archived"),
                tags=self.get_option("tags"),
            )
            for preference in self.get_option("hostnames"):
                fnd.preferred_hostname({"instance_id": "i-0", "tags": {}, "network_interfaces": []}, [preference])
            fnd.check_region_names(self.get_option("regions") or [])
        except fnd.FilterError as e:
            raise AnsibleError(f"{path}: {e}") from None

        self._load(path, cache, selection)

    def _load(self, path, cache, selection):
        """The findings, from the cache or AWS, made into hosts."""
        # The findings read and every host's variables (about 250 objects a host) are made without collections (the
        # collector scanned the growing heap again and again: 19 full collections at 2,000 hosts), then what lives on
        # is frozen out of ansible-playbook's later scans (docs/benchmarks.md, `make bench-org`).
        with long_lived():
            cached, results = self.get_cached_result(path, cache)
            if not cached or "partition" not in results:  # a cache written before the partition was kept
                cached, results = False, self._query(selection)
            self._report(results["problems"], cached)
            if results.get("loaded", True):
                # "loaded, no compromised instance" differs from "did not load" (the playbooks' checked_hosts filter)
                self.inventory.add_group(inventory_check.LOADED_GROUP)
            self._populate(results["hosts"], results["partition"])
        self.update_cached_result(path, cache, results)

    # -- query --------------------------------------------------------------------------------------

    def _query(self, selection):
        """{"hosts": [host], "problems": [message], "partition": the caller's}: plain data, what the cache stores."""
        problems = []
        workers = max(1, int(self.get_option("max_concurrency") or 1))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            accounts = self._account_credentials = self._accounts(pool, problems)
            sources = self._sources(pool, accounts, problems)
            detectors = {pool.submit(self._detector, account, region): (account, region) for account, region in sources}
            listings, read = {}, 0
            for future in as_completed(detectors):
                account, region = detectors[future]
                try:
                    detector_id = future.result()
                except SourceProblem as e:
                    problems.append(e)
                    continue
                read += 1
                for criteria in fnd.listing_criteria(selection):
                    listings[pool.submit(self._list_findings, pool, account, region, detector_id, criteria)] = \
                        (account, region, detector_id)
            findings, batches = [], []
            for future in as_completed(listings):
                try:
                    batches.extend(future.result())
                except SourceProblem as e:
                    problems.append(e)
            for future in batches:
                try:
                    findings.extend(future.result())
                except SourceProblem as e:
                    problems.append(e)
            hosts, _ignored = fnd.build_hosts(findings, selection)
            if self.get_option("check_instances") and hosts:
                self._check_instances(pool, hosts, accounts, problems)
        return {"hosts": [hosts[key] for key in sorted(hosts)], "problems": _merge_problems(problems),
                "partition": self._partition, "loaded": read > 0}

    def _accounts(self, pool, problems):
        """{account id: credentials} for every account to read."""
        accounts = {}
        base = self._base_credentials()
        try:
            # Always asked: its ARN gives the partition of every role ARN built from a template.
            identity = aws_calls.caller_identity(self._client(base, "sts", self._home_region()))
            self._partition = caller_partition(identity)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self.fail_aws("GuardDuty inventory: cannot identify the current credentials", exception=e)
        except ValueError as e:
            raise AnsibleError(f"GuardDuty inventory: cannot read the partition of the current credentials: {e}") from None
        if self.get_option("use_current_credentials"):
            accounts[identity["Account"]] = base
        template = self.get_option("account_role_arn")
        jobs = {}
        for entry in self.get_option("accounts") or []:
            if isinstance(entry, dict):
                account = str(entry.get("account_id") or entry.get("id") or "")
                role_arn = entry.get("role_arn") or fnd.responder_role_arn(template, account, self._partition)
            else:
                account, role_arn = str(entry), fnd.responder_role_arn(template, str(entry), self._partition)
            if not account:
                raise AnsibleError(f"GuardDuty inventory: accounts entry {entry!r} has no account_id")
            if account not in accounts and account not in jobs:
                jobs[account] = (role_arn, pool.submit(self._assume, role_arn))
        for account, (role_arn, future) in jobs.items():
            try:
                accounts[account] = future.result()
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                problems.append(SourceProblem(account, None, f"cannot assume {role_arn}; its findings are not in this inventory",
                                              error_code(e)))
        return accounts

    def _sources(self, pool, accounts, problems):
        """[(account, region)] to read."""
        regions = self.get_option("regions")
        if regions:
            return [(account, region) for account in accounts for region in regions]
        futures = {account: pool.submit(self._enabled_regions, account, creds) for account, creds in accounts.items()}
        sources = []
        for account, future in futures.items():
            try:
                sources.extend((account, region) for region in future.result())
            except SourceProblem as e:
                problems.append(e)
        return sources

    def _enabled_regions(self, account, creds):
        try:
            return _describe_regions(self._client(creds, "ec2", self._home_region()))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _problem(account, None, "ec2:DescribeRegions (set `regions` to skip it)", e) from None

    def _detector(self, account, region):
        client = self._client(self._credentials_for(account), "guardduty", region)
        try:
            detectors = gd.list_detector_ids(client)
        except gd.GuardDutyError as e:
            raise _problem(account, region, "guardduty:ListDetectors", e) from None
        if not detectors:
            raise SourceProblem(account, region, "GuardDuty has no detector (not enabled); no findings from it")
        return detectors[0]

    def _list_findings(self, pool, account, region, detector_id, criteria):
        """The GetFindings (futures) of every finding id matching `criteria` in one account and region, each started
        as soon as its page of ids is read: a region's pages come one after the other (a page's token is in the page
        before), and its findings are read meanwhile. A listing that fails keeps none of its findings, as when a
        listing was read whole before its findings: its account and region are reported (SourceProblem), never read in
        part."""
        client = self._client(self._credentials_for(account), "guardduty", region)
        started = []
        try:
            for ids in gd.finding_id_pages(client, detector_id, criteria):
                for chunk in aws_calls.chunks(ids, gd.GET_FINDINGS_BATCH):
                    started.append(pool.submit(self._get_source_findings, account, region, detector_id, chunk))
        except gd.GuardDutyError as e:
            for future in started:
                future.cancel()
            raise _problem(account, region, "guardduty:ListFindings", e) from None
        return started

    def _get_source_findings(self, account, region, detector_id, finding_ids):
        client = self._client(self._credentials_for(account), "guardduty", region)
        try:
            return gd.get_findings(client, detector_id, finding_ids)
        except gd.GuardDutyError as e:
            raise _problem(account, region, "guardduty:GetFindings", e) from None

    def _check_instances(self, pool, hosts, accounts, problems):
        """Drop hosts whose instance is gone; refresh the others' details from EC2 (in place)."""
        by_source = {}
        for key in hosts:
            by_source.setdefault(key[:2], []).append(key[2])
        role_template = self.get_option("responder_role_arn")
        futures = {}
        for (account, region), ids in sorted(by_source.items()):
            futures[(account, region)] = pool.submit(self._describe_source, accounts, role_template, account, region, ids)
        for (account, region), future in futures.items():
            try:
                found, missing, conversion = future.result()
            except SourceProblem as e:
                problems.append(e)
                continue
            if isinstance(conversion, SourceProblem):
                problems.append(conversion)
                conversion = set()
            for instance_id, reason in sorted(missing.items()):
                self.warn(f"GuardDuty inventory: account {account} region {region}: {instance_id} dropped: {reason}")
                del hosts[(account, region, instance_id)]
            for instance_id, instance in found.items():
                host = hosts[(account, region, instance_id)]
                live = fnd.instance_from_ec2(instance, account, region)
                live["image_description"] = host["instance"]["image_description"]  # EC2 does not say
                host["instance"] = live
                stuck = fnd.enis_on_groups(live, conversion)
                if stuck:
                    host["conversion_stuck_enis"] = stuck

    def _describe_source(self, accounts, role_template, account, region, instance_ids):
        creds = accounts.get(account)
        if creds is None:
            role_arn = fnd.responder_role_arn(role_template, account, self._partition)
            if not role_arn:
                raise SourceProblem(account, region, "no credentials to check its instances (responder_role_arn is empty); "
                                    f"{len(instance_ids)} host(s) kept unchecked")
            try:
                creds = self._assume(role_arn)
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                raise SourceProblem(account, region, f"cannot assume {role_arn} to check its instances; "
                                    f"{len(instance_ids)} host(s) kept unchecked", error_code(e)) from None
        client = self._client(creds, "ec2", region)
        try:
            found, missing = describe_instances(client, sorted(instance_ids))
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            raise _problem(account, region, "ec2:DescribeInstances", e,
                           f"{len(instance_ids)} host(s) kept unchecked") from None
        conversion = set()
        if self.get_option("conversion_check") and found:
            try:
                conversion = {g["group_id"] for g in map(isolation.group_view, _describe_conversion_groups(client))
                              if isolation.is_conversion_group(g)}
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
                conversion = _problem(account, region, "ec2:DescribeSecurityGroups", e,
                                      "hosts left on a conversion group are not in guardduty_conversion_stuck")
        return found, missing, conversion

    # -- sessions and clients -----------------------------------------------------------------------

    def _home_region(self):
        return self.region or (self.get_option("regions") or ["us-east-1"])[0]

    def _base_credentials(self):
        _region, _endpoint, kwargs = get_aws_connection_info(self)
        wanted = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "profile_name")
        creds = {k: v for k, v in kwargs.items() if k in wanted}
        creds.update({k: v for k, v in self._frozen_credentials.items() if k != "profile_name" or v})
        if self._frozen_credentials:
            creds.pop("profile_name", None)
        return creds

    def _credentials_for(self, account):
        return self._account_credentials[account]

    def _assume(self, role_arn):
        """Credentials of a role, assumed once per run whatever the number of regions that need it. One lock per role,
        so that one member's AssumeRole does not hold up another member's sources (with one lock for all they went
        one after the other)."""
        with self._assume_lock:
            lock = self._role_locks.setdefault(role_arn, threading.Lock())
        with lock:
            if role_arn not in self._assumed:
                c = _assume_role(self._client(self._base_credentials(), "sts", self._home_region()), role_arn)
                self._assumed[role_arn] = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                                           "aws_session_token": c["SessionToken"]}
            return self._assumed[role_arn]

    def _client(self, creds, service, region):
        """A client per credentials, service and region, all from one boto3 Session: a session loads
        botocore's models once, and making sessions and clients is neither cheap nor thread-safe."""
        key = (tuple(sorted((k, v) for k, v in creds.items() if v)), service, region)
        with self._session_lock:
            client = self._clients.get(key)
            if client is None:
                _region, endpoint, kwargs = get_aws_connection_info(self)
                if self._session is None:
                    self._session = boto3.session.Session(profile_name=creds.get("profile_name") or None)
                # botocore's own retries off: the floor's policy retries every call (aws_calls.py).
                config = aws_calls.client_config(max_pool_connections=max(10, int(self.get_option("max_concurrency") or 1) * 2),
                                                 user_agent_extra="cloudsec.guardduty-inventory")
                if kwargs.get("aws_config") is not None:
                    config = config.merge(kwargs["aws_config"])
                keys = {k: v for k, v in creds.items() if v and k != "profile_name"}
                client = self._clients[key] = self._session.client(
                    service, region_name=region, endpoint_url=endpoint, config=config, verify=kwargs.get("verify"), **keys)
            return client

    # -- populate -----------------------------------------------------------------------------------

    def _report(self, problems, cached):
        if not problems:
            return
        if self.get_option("strict"):
            raise AnsibleError("\n".join(problems))
        for message in problems:
            self.warn(message + (" [cached result]" if cached else ""))

    def _populate(self, hosts, partition):
        prefix = self.get_option("hostvars_prefix") or ""
        role_template = self.get_option("responder_role_arn")
        strict = self.get_option("strict")
        named, clashes = fnd.assign_hostnames(dict(enumerate(hosts)), self.get_option("hostnames"))
        for name, instance_id in clashes:
            self.warn(f"GuardDuty inventory: hostname {name!r} is taken; {instance_id} is named by its instance id")
        for name, host in named:
            for group in fnd.host_groups(host):
                self.inventory.add_group(group)
            hostvars = fnd.host_variables(host, partition, prefix, role_template)
            self.inventory.add_host(name)
            for group in fnd.host_groups(host):
                self.inventory.add_child(group, name)
            self.inventory.add_group(inventory_check.LOADED_GROUP)
            self.inventory.add_child(inventory_check.LOADED_GROUP, name)
            for key, value in hostvars.items():
                self.inventory.set_variable(name, key, value)
            self.inventory.set_variable(name, "ansible_connection", "local")
            self.inventory.set_variable(name, "ansible_python_interpreter", trust_as_template("{{ ansible_playbook_python }}"))
            self._set_composite_vars(self.get_option("compose"), hostvars, name, strict=strict)
            self._add_host_to_composed_groups(self.get_option("groups"), hostvars, name, strict=strict)
            self._add_host_to_keyed_groups(self.get_option("keyed_groups"), hostvars, name, strict=strict)


def _merge_problems(problems):
    """Messages, with "no detector" regions folded into one line per account."""
    no_detector, out = {}, []
    for problem in problems:
        if problem.code is None and "has no detector" in str(problem):
            no_detector.setdefault(problem.account, []).append(problem.region)
        elif str(problem) not in out:
            out.append(str(problem))
    for account, regions in sorted(no_detector.items()):
        out.append(f"GuardDuty inventory: account {account}: GuardDuty has no detector (not enabled) in "
                   f"{', '.join(sorted(regions))}; no findings from there")
    return sorted(out)
