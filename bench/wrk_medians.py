"""Medians of wrk --latency reports, shared by the bench scripts."""

import re
import statistics


def _ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def medians(paths):
    """(req/s, p50 ms, p99 ms): the medians over wrk reports."""
    rps, p50, p99 = [], [], []
    for path in paths:
        text = open(path).read()
        rps.append(float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)))
        p50.append(_ms(*re.search(r"50%\s+([\d.]+)(us|ms|s)", text).groups()))
        p99.append(_ms(*re.search(r"99%\s+([\d.]+)(us|ms|s)", text).groups()))
    return statistics.median(rps), statistics.median(p50), statistics.median(p99)


def rate(path):
    """req/s of one wrk report."""
    return float(re.search(r"Requests/sec:\s+([\d.]+)", open(path).read()).group(1))


def h2load_medians(paths):
    """(req/s, mean ms): the medians over h2load reports."""
    rps, mean = [], []
    for path in paths:
        text = open(path).read()
        rps.append(float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", text).group(1)))
        m = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", text)
        mean.append(_ms(*m.groups()))
    return statistics.median(rps), statistics.median(mean)
