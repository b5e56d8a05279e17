"""Generated scenarios for benchmarks: `generated:N[:ACCOUNTS[:REGIONS]]`.

N findings (exactly) spread evenly over ACCOUNTS accounts (default 2, at most 20: an organization; the first
is the GuardDuty administrator, the others its members, each with its GuardDutyResponder role) x REGIONS
regions (default 4, at most 6). Each account and region has one
VPC, one subnet, one security group and one `count:` instance entry (launched by a single RunInstances,
see scenario.py) whose instances carry two findings each (a Backdoor C&C at 8.0 and an SSH brute force
at 5.0); an odd share gets one more instance with the Backdoor finding only. Every region also has one
S3 finding, which EC2 inventories must ignore, and each source has a few instances without findings.

Option `unit="instances"` (reset options): N counts compromised instances instead, each with both
findings, spread evenly over the sources (`generated:5000:20:4` with it: 5,000 instances, 10,000 findings,
for tests/bench/bench_org.py).

Option `enis=K` (reset options, default 1): the compromised instances of each source are spread evenly
over K `count:` entries with 1, 2 ... K network interfaces each (`compromised-s0-e2-00000`...).
"""

# the first four are the other scenarios' accounts; the rest make an organization of 20 (bench_org.py)
ACCOUNTS = ["123456789012", "111122223333", "444455556666", "777788889999"] + [
    f"{200000000000 + k * 1010101:012d}" for k in range(4, 20)]
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "us-east-2"]
HEALTHY_PER_SOURCE = 5
BACKDOOR = {"type": "Backdoor:EC2/C&CActivity.B", "severity": 8.0,
            "action": {"type": "NETWORK_CONNECTION", "direction": "OUTBOUND", "remote_ip": "203.0.113.77",
                       "remote_port": 443, "local_port": 49822, "protocol": "TCP"}}
SSH = {"type": "UnauthorizedAccess:EC2/SSHBruteForce", "severity": 5.0,
       "action": {"type": "NETWORK_CONNECTION", "direction": "INBOUND", "remote_ip": "198.51.100.23",
                  "local_port": 22, "protocol": "TCP"}}
S3 = {"type": "Policy:S3/BucketBlockPublicAccessDisabled", "severity": 2.0, "resource_type": "S3Bucket",
      "bucket": "generated-logs"}


def generate(findings, accounts=2, regions=4, enis=1, unit="findings", **options):
    if not 1 <= accounts <= len(ACCOUNTS):
        raise ValueError(f"generated: 1 to {len(ACCOUNTS)} accounts, not {accounts}")
    if not 1 <= regions <= len(REGIONS):
        raise ValueError(f"generated: 1 to {len(REGIONS)} regions, not {regions}")
    if unit not in ("findings", "instances"):
        raise ValueError(f"generated: unit is findings or instances, not {unit!r}")
    sources = [(a, r) for a in ACCOUNTS[:accounts] for r in REGIONS[:regions]]
    share, extra = divmod(int(findings), len(sources))
    spec = {"administrator": ACCOUNTS[0], "accounts": {}}
    for index, (account, region) in enumerate(sources):
        count = share + (1 if index < extra else 0)
        count = 2 * count if unit == "instances" else count  # both findings on each instance
        spec["accounts"].setdefault(account, {"regions": {}})["regions"][region] = _region(region, count, index, int(enis))
    return spec


def _region(region, findings, index, enis=1):
    # names are unique across sources: the scenario's resource map indexes instances by name
    instances = {f"healthy-s{index}": {"count": HEALTHY_PER_SOURCE, "subnet": "app", "groups": ["app"],
                             "tags": {"Environment": "bench", "Service": "healthy"}}}
    pairs, single = divmod(findings, 2)
    if pairs and enis > 1:
        share, extra = divmod(pairs, enis)
        for k in range(1, enis + 1):
            count = share + (1 if k <= extra else 0)
            if count:
                instances[f"compromised-s{index}-e{k}"] = {"count": count, "enis": k, "subnet": "app", "groups": ["app"],
                                                       "tags": {"Environment": "bench", "Service": "web"},
                                                       "findings": [BACKDOOR, SSH]}
    elif pairs:
        instances[f"compromised-s{index}"] = {"count": pairs, "subnet": "app", "groups": ["app"],
                                    "tags": {"Environment": "bench", "Service": "web"}, "findings": [BACKDOOR, SSH]}
    if single:
        instances[f"compromised-odd-s{index}"] = {"subnet": "app", "groups": ["app"],
                                        "tags": {"Environment": "bench", "Service": "web"}, "findings": [BACKDOOR]}
    cidr = f"10.{index % 250}.0.0/16"
    return {
        "vpcs": {"bench": {"cidr": cidr, "subnets": {"app": {"cidr": cidr.replace("0.0/16", "0.0/18"),
                                                             "az": f"{region}a"}},
                           "security_groups": {"app": {"ingress": [{"port": 443, "cidr": "0.0.0.0/0"}]}}}},
        "instances": instances,
        "other_findings": [S3],
    }
