# -*- coding: utf-8 -*-
# Copyright: cloudsec.guardduty contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""What is wrong with the role options a batch's leader would run its batch with: the role's argument spec (as
ansible.builtin.validate_argument_spec checks it) and the modules' own guards (module_utils/guards.py), for every
leader in one task of the controller (batch_stage, stage `options`), instead of two forked tasks a leader.

`read(name)` gives a leader's templated value of a variable, raises KeyError when the leader has none, and any
other exception when the value cannot be templated (an undefined variable in a host's own value, for one)."""

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.cloudsec.guardduty.plugins.module_utils.guards import option_problems


def _cause(exc):
    return (getattr(exc, "message", None) or str(exc) or type(exc).__name__).splitlines()[0]


def leader_option_problems(spec, read, checks=None, check_values=None):
    """[problem] for one leader: each spec option it has that cannot be templated, the spec's own errors over the
    ones that can, then the guards over `check_values` ({option: variable name}) by `checks` ({option: kind})."""
    problems, values = [], {}
    for name in spec or {}:
        try:
            values[name] = read(name)
        except KeyError:
            continue
        except Exception as exc:  # pylint: disable=broad-except  # the leader's own value: a problem of its batch
            problems.append(f"{name}: {_cause(exc)}")
    problems.extend(ArgumentSpecValidator(spec or {}).validate(values, validate_role_argument_spec=True).error_messages)
    guarded = {}
    for option, variable in (check_values or {}).items():
        if variable in values:
            guarded[option] = values[variable]
            continue
        try:
            guarded[option] = read(variable)
        except KeyError:
            guarded[option] = None
        except Exception as exc:  # pylint: disable=broad-except
            problems.append(f"{variable}: {_cause(exc)}")
            guarded.pop(option, None)
    known = {option: kind for option, kind in (checks or {}).items() if option in guarded}
    problems.extend(option_problems(guarded, known))
    return problems
