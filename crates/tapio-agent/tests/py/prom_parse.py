"""Parses a metrics scrape from stdin with the official Prometheus Python
parsers and prints every sample as JSON lines: {"name", "labels", "value"}.

Usage: prom_parse.py [prometheus|openmetrics]
An independent check of what the agent serves: any syntax error fails.
"""
import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "prometheus"
text = sys.stdin.read()
if mode == "openmetrics":
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
else:
    from prometheus_client.parser import text_string_to_metric_families

for family in text_string_to_metric_families(text):
    for s in family.samples:
        print(json.dumps({"family": family.name, "type": family.type,
                          "name": s.name, "labels": s.labels, "value": s.value}))
