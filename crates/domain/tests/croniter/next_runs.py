#!/usr/bin/env python3
"""Next run times from croniter, the independent implementation that
crates/domain/tests/croniter_agreement.rs checks mailferry's schedules against.

Reads a JSON list of cases on stdin, each
  {"expression": "*/15 * * * *", "zone": "Europe/Berlin",
   "start": "2025-03-30T00:20:00Z", "count": 8}
and prints a JSON list with, for each case, either {"runs": [UTC instants]}
(strictly after start, computed in the zone) or {"error": "..."}.

A six-field expression has its seconds field first, as in mailferry.
`implement_cron_bug=True` makes croniter combine the two day fields as Vixie
cron does (AND when either starts with `*`), which is mailferry's rule.
"""
import datetime as dt
import json
import sys

try:
    from croniter import croniter
except ImportError:
    sys.stderr.write("croniter is not importable by " + sys.executable + "\n")
    sys.exit(3)
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc


def utc_text(value):
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_runs(case):
    zone = ZoneInfo(case["zone"])
    start = dt.datetime.fromisoformat(case["start"].replace("Z", "+00:00")).astimezone(zone)
    expression = case["expression"]
    it = croniter(
        expression,
        start,
        second_at_beginning=len(expression.split()) == 6,
        implement_cron_bug=True,
    )
    return [utc_text(it.get_next(dt.datetime)) for _ in range(case["count"])]


def main():
    results = []
    for case in json.load(sys.stdin):
        try:
            results.append({"runs": next_runs(case)})
        except Exception as error:  # reported per case, so one bad case names itself
            results.append({"error": f"{type(error).__name__}: {error}"})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
