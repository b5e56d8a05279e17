"""The preflight run in the controller's process reads the options and environment the module would read, and fails
as the module would (plugins/plugin_utils/controller_module.py)."""

import pytest

from ansible_collections.cloudsec.guardduty.plugins.module_utils import responder_sessions
from ansible_collections.cloudsec.guardduty.plugins.plugin_utils.controller_module import ControllerModule
from ansible_collections.cloudsec.guardduty.plugins.plugin_utils.controller_module import ControllerModuleFailed


def test_the_aws_options_come_from_the_environment_as_the_module_reads_them(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    module = ControllerModule(responder_sessions.ARGUMENT_SPEC, {"session_name": "cloudsec-guardduty-INC-1",
                                                                 "_ansible_check_mode": True})
    assert module.params["access_key"] == "AKIDFROMENV" and module.params["secret_key"] == "secret-from-env"
    assert module.params["duration_seconds"] == 3600 and module.params["roles"] == [] and module.check_mode is False


def test_options_the_module_would_refuse_are_refused_by_name():
    with pytest.raises(ControllerModuleFailed, match="session_name"):
        ControllerModule(responder_sessions.ARGUMENT_SPEC, {"roles": []})
    with pytest.raises(ControllerModuleFailed, match="role_arn"):
        ControllerModule(responder_sessions.ARGUMENT_SPEC, {"session_name": "s", "roles": [{"region": "us-east-1"}]})


def test_a_connection_the_module_could_not_make_fails_the_preflight_as_the_module_would(monkeypatch):
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    module = ControllerModule(responder_sessions.ARGUMENT_SPEC, {
        "session_name": "s", "profile": "incident", "access_key": "AKID", "secret_key": "x",
        "roles": [{"role_arn": "arn:aws:iam::111122223333:role/GuardDutyResponder", "region": "us-east-1"}]})
    with pytest.raises(ControllerModuleFailed, match="Passing both a profile and access tokens is not supported"):
        responder_sessions.responder_sessions(module)
