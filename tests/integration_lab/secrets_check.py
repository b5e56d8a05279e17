"""No credential in a playbook's output, reports or evidence; reports and evidence private.

Used by test_least_privilege.py, whose isolate rerun runs at -vvv with the default (human) output, every
default stage on (evidence included), as an IAM user whose secret key the test knows, assuming
GuardDutyResponder in both demo accounts under the documented policies. Then:
- neither the user's secret access key, nor anything shaped like a session token or like a secret key or
  token value next to its name, appears in stdout, stderr, the report files or the evidence files;
- report and evidence files are mode 0600, their directories 0700.

The lab's journal does not keep response bodies (nor secret parameters), so the assumed roles' secrets
are found by shape: moto's and AWS's session tokens start with a fixed prefix. Access key ids are not
secrets (amazon.aws shows its access_key option at -vvv on purpose) and are not looked for.
"""

import json
import pathlib
import re
import stat
import subprocess
import sys

from tests.integration_lab.playbook_results import responder_sessions


REPO = pathlib.Path(__file__).resolve().parents[2]
SECRET_SHAPES = [
    # session tokens: moto's and AWS's prefixes (base64 of their binary header)
    re.compile(r"(?:FQoGZXIvYXdz|FwoGZXIvYXdz|IQoJb3JpZ2lu)[A-Za-z0-9/+=]{16,}"),
    # a secret key or token value next to its name, whatever the quoting, unless masked
    re.compile(r"(?i)[\"']?(?:secret_?access_?key|secret_?key|session_?token|aws_secret_access_key|aws_session_token)"
               r"[\"']?\s*[:=]\s*[\"']?(?!VALUE_SPECIFIED_IN_NO_LOG_PARAMETER|\*{3,}|null|None|omit|\{\{|[\"',}\s])"
               r"([^\"'\s,}]{8,})"),
]


def private_files(root):
    """[(path, mode)] of every file and directory under root, root included."""
    out = [(root, stat.S_IMODE(root.stat().st_mode))]
    for path in sorted(root.rglob("*")):
        out.append((path, stat.S_IMODE(path.stat().st_mode)))
    return out


def leaks(text, known):
    found = [f"known credential {value[:4]}... at offset {text.index(value)}" for value in known if value in text]
    for shape in SECRET_SHAPES:
        for match in shape.finditer(text):
            start = max(0, match.start() - 160)
            found.append(f"{shape.pattern[:30]}...: ...{text[start:match.end() + 40]!r}")
    return found


def run_at_vvv_and_assert_no_secret(identity, tmp_path, inventory, playbook, variables, evidence, reports):
    """Run `playbook` at -vvv with the default (human) output as `identity`; fail on any leaked credential
    in its output, reports or evidence, or on report/evidence files not 0600 (directories 0700)."""
    env = identity.env()
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)  # the default output: what a responder's terminal and CI logs show
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    cmd = [str(pathlib.Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / playbook),
           "-i", str(inventory), "-e", f"@{tmp_path / 'vars.json'}", "-vvv"]
    mark = identity.mark()
    proc = subprocess.run(cmd, cwd=str(REPO), env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # the responder roles were assumed (by the run's engine, not only the inventory): there were session secrets to leak
    assert any(e["outcome"] == "ok" for e in responder_sessions(identity.journal(mark))), "no responder role was assumed"

    known = [identity.credentials()["aws_secret_access_key"]]
    problems = [f"stdout: {leak}" for leak in leaks(proc.stdout, known)]
    problems += [f"stderr: {leak}" for leak in leaks(proc.stderr, known)]
    written = [p for root in (evidence, reports) for p in root.rglob("*") if p.is_file()]
    assert any(p.is_relative_to(evidence) for p in written) and any(p.is_relative_to(reports) for p in written)
    for path in written:
        problems += [f"{path}: {leak}" for leak in leaks(path.read_bytes().decode("utf-8", "replace"), known)]
    assert not problems, "credentials leaked:\n" + "\n".join(problems)

    wrong = []
    for root in (evidence, reports):
        for path, mode in private_files(root):
            expected = 0o700 if path.is_dir() else 0o600
            if mode != expected:
                wrong.append(f"{path}: {oct(mode)}, expected {oct(expected)}")
    assert not wrong, "\n".join(wrong)
