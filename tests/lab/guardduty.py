"""GuardDuty findings and Malware Protection for the lab (moto has detectors only). Placeholder: filled in by the GuardDuty lab work."""


class GuardDutyLab:
    def __init__(self, clock):
        self.clock = clock
        self.reset()

    def reset(self):
        self.findings = {}

    def handles(self, req):
        return False

    def handle(self, req):
        raise NotImplementedError

    def add_finding(self, account, region, detector_id, spec):
        self.findings.setdefault((account, region), []).append(spec)

    def set_administrator(self, administrator, members):
        self.administrator = (administrator, list(members))

    def set_malware(self, account, region, instance_id, spec):
        pass
