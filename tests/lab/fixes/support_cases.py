"""AWS Support cases as AWS keeps them.

- DescribeCases: AWS returns each case as it is; a case keeps the severity it was opened with and its
  status changes only when AWS Support or the customer acts on it. moto 5.2 "advances" every described
  case's status and severity at each DescribeCases call (opened -> pending-customer-action -> ...,
  high -> urgent -> critical ...), so a second look at a case sees a different case.
An account without a Business/Enterprise support plan is simulated with a forced fault:
{"forced": [{"service": "support", "code": "SubscriptionRequiredException"}]} (lab.faults).
"""

from moto.support.models import SupportBackend


def apply():
    SupportBackend.advance_case_status = lambda self, case_id: None
    SupportBackend.advance_case_severity_codes = lambda self, case_id: None
