from urllib.parse import unquote

from ansible_collections.cloudsec.guardduty.plugins.module_utils import incident_report as r

FID = "8ac7e1f0b2d94c1c9d5e3f6a7b8c9d0e"
DET = "12abc34d567e8fa901bc2d34e56789f0"
ACCOUNT = "111122223333"


def test_each_finding_links_to_guardduty_security_hub_and_detective():
    (links,) = r.finding_links([FID], "us-east-1", ACCOUNT, DET)
    assert links["guardduty"] == f"https://us-east-1.console.aws.amazon.com/guardduty/home?region=us-east-1#/findings?macros=current&fId={FID}"
    assert links["detective"] == f"https://us-east-1.console.aws.amazon.com/detective/home?region=us-east-1#findings/GuardDuty/{FID}"
    base, search = links["securityhub"].split("#/findings?search=")
    assert base == "https://us-east-1.console.aws.amazon.com/securityhub/home?region=us-east-1"
    assert unquote(unquote(search)) == f"Id=\\operator\\:EQUALS\\:arn:aws:guardduty:us-east-1:{ACCOUNT}:detector/{DET}/finding/{FID}"


def test_partition_consoles_and_missing_detector():
    (links,) = r.finding_links([FID], "cn-north-1", ACCOUNT, None)
    assert links["guardduty"].startswith("https://console.amazonaws.cn/guardduty/home?region=cn-north-1#")
    assert links["securityhub"] is None  # the ASFF id needs the detector
    (gov,) = r.finding_links([FID], "us-gov-west-1", ACCOUNT, DET)
    assert "arn%253Aaws-us-gov%253Aguardduty" in gov["securityhub"]
    assert gov["detective"].startswith("https://console.amazonaws-us-gov.com/detective/")


def test_hostile_ids_make_no_link():
    assert r.finding_links(['x" onmouseover="alert(1)', "../../x", FID], "us-east-1", ACCOUNT, DET)[0]["finding_id"] == FID
    assert len(r.finding_links(['x" onmouseover="alert(1)', FID], "us-east-1", ACCOUNT, DET)) == 1
    assert r.finding_links([FID], "us-east-1\"><script>", ACCOUNT, DET) == []
    assert r.finding_links([FID], "us-east-1", "not-an-account", DET)[0]["securityhub"] is None


def test_the_report_shows_the_links_in_every_format():
    entry = {"host": "web-1", "account_id": ACCOUNT, "region": "us-east-1", "findings": [FID], "detector_id": DET,
             "stages": {"network": {"changed": True}}}
    instances = {"i-0123456789abcdef0": entry}
    report = r.build_report("INC-1", instances)
    links = report["instances"][0]["finding_links"]
    assert [link["finding_id"] for link in links] == [FID]
    markdown = r.render_markdown(report)
    assert f"[GuardDuty](<{links[0]['guardduty']}>)" in markdown and "[Detective](<" in markdown
    page = r.render_html(report)
    assert f'<a href="{r.esc(links[0]["securityhub"])}" rel="noreferrer noopener">Security Hub</a>' in page
    assert "finding_links" in r.render_json(report)
    # no findings: no links, the report as before
    del instances["i-0123456789abcdef0"]["findings"]
    assert "finding_links" not in r.build_report("INC-1", instances)["instances"][0]
