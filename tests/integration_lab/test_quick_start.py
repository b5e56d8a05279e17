"""The README's quick start, run exactly as written, from an empty home directory, against the lab.

Steps 2-4 of "On AWS: quick start" are read from README.md: each `console` block is run line by line in one
bash (`set -e`), the `yaml` block is the inventory file step 3 names. Only the environment is the lab's:
its endpoint and credentials (AWS_URL, AWS_ACCESS_KEY_ID ...), a temporary HOME holding a link named
`cloudsec.guardduty` to this checkout (the user's clone), and this venv first on PATH. No ANSIBLE_CONFIG:
the collection is used as a user installs it, outside the repository. Also: the built tarball carries what a
user can use and none of the development tree (galaxy.yml build_ignore).
"""

import os
import pathlib
import re
import subprocess
import sys
import tarfile

import boto3
import pytest
import yaml

from tests.lab.pytest_plugin import REPO

VENV_BIN = pathlib.Path(sys.executable).parent


def quick_start_blocks():
    text = (REPO / "README.md").read_text()
    section = text.split("## On AWS: quick start", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(console|yaml)\n(.*?)```", section, flags=re.S)
    return [(kind, "\n".join(line.strip() for line in body.splitlines())) for kind, body in blocks]


class Shell:
    """The user's terminal: the blocks run one after the other, each where the previous one left off (cd)."""

    def __init__(self, home, env):
        self.cwd, self.env, self.state = home, env, home / ".cwd"

    def run(self, block):
        script = f"set -euo pipefail\n{block}\npwd > {self.state}\n"
        proc = subprocess.run(["bash", "-c", script], cwd=str(self.cwd), env=self.env, capture_output=True, text=True,
                              timeout=900, check=False)
        assert proc.returncode == 0, f"README block failed (rc {proc.returncode}):\n{block}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        self.cwd = pathlib.Path(self.state.read_text().strip())
        return proc


def enis_of(ec2, instance_id):
    reservations = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    instance = reservations[0]["Instances"][0]
    return {n["NetworkInterfaceId"]: sorted(g["GroupId"] for g in n["Groups"]) for n in instance["NetworkInterfaces"]}


def group_names(ec2, group_ids):
    groups = ec2.describe_security_groups(GroupIds=sorted(set(group_ids)))["SecurityGroups"]
    return {g["GroupId"]: g["GroupName"] for g in groups}


@pytest.fixture()
def user_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "cloudsec.guardduty").symlink_to(REPO)  # the user's clone
    return home


def test_readme_quick_start_as_written(demo, user_home):
    blocks = quick_start_blocks()
    assert [kind for kind, _ in blocks] == ["console", "yaml", "console", "console"], blocks
    (_, install), (_, inventory), (_, isolate), (_, release) = blocks
    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    assert f"cloudsec-guardduty-{galaxy['version']}.tar.gz" in install, "the README names the built version"

    env = demo.env()
    for key in ("ANSIBLE_CONFIG", "ANSIBLE_STDOUT_CALLBACK", "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS"):
        env.pop(key, None)
    env.update({"HOME": str(user_home), "PATH": f"{VENV_BIN}:{env['PATH']}", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
                "CLOUDSEC_GUARDDUTY_INCIDENT_STORE": str(user_home / ".cloudsec-guardduty")})

    shell = Shell(user_home, env)
    shell.run(install)
    installed = user_home / ".ansible/collections/ansible_collections/cloudsec/guardduty"
    assert (installed / "MANIFEST.json").is_file() and not installed.is_symlink()
    assert not (REPO / ".build/collections/ansible_collections/cloudsec/guardduty/MANIFEST.json").exists()

    incident = user_home / "incident"
    incident.mkdir()
    (incident / "prod.guardduty.yml").write_text(inventory + "\n")

    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=demo.endpoint,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    web_1 = demo.resources["instances"]["web-1"]["id"]
    before = enis_of(ec2, web_1)
    mark = demo.mark()
    shell.run(isolate)

    contained = enis_of(ec2, web_1)
    names = group_names(ec2, [g for groups in contained.values() for g in groups])
    assert all(len(groups) == 1 and names[groups[0]].startswith("guardduty-isolation") for groups in contained.values()), contained
    journal = demo.journal(since=mark, action="ModifyNetworkInterfaceAttribute")
    assert {e["params"].get("NetworkInterfaceId") for e in journal if e["outcome"] == "ok"} >= set(before)
    reports = list((user_home / "guardduty-reports" / "INC-42").rglob("report.json"))
    assert reports, "the report is where step 4 says"

    released = shell.run(release)
    assert "web-1" in released.stdout and "no hosts matched" not in released.stdout
    assert enis_of(ec2, web_1) == before


def test_built_collection_carries_no_development_files(tmp_path):
    subprocess.run([str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(tmp_path),
                    str(REPO)], check=True, capture_output=True, text=True, env=dict(os.environ, ANSIBLE_CONFIG=""))
    (tarball,) = tmp_path.glob("cloudsec-guardduty-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    required = {"plugins/modules/ec2_isolation.py", "plugins/inventory/guardduty.py", "playbooks/isolate.yml",
                "roles/isolate/tasks/main.yml", "meta/runtime.yml", "meta/ee-requirements.txt", "docs/iam/responder.json",
                "extensions/eda/rulebooks/guardduty_isolate.yml", "README.md", "changelogs/changelog.yaml"}
    assert required <= names, sorted(required - names)
    forbidden = re.compile(r"^(tests|extensions/molecule|changelogs/fragments|\.venv|\.build|\.ci|\.git)(/|$)"
                           r"|^(ansible\.cfg|requirements\.txt|requirements\.lock|Makefile|\.ansible-lint|\.yamllint|\.gitignore)$"
                           r"|__pycache__|\.pyc$")
    assert sorted(n for n in names if forbidden.search(n)) == []
