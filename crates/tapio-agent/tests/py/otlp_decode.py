"""Decodes an OTLP/HTTP ExportLogsServiceRequest (protobuf, stdin) with the
official `opentelemetry-proto` Python package and prints its log records as
JSON lines, attribute values tagged with their OTLP type.
"""
import json
import sys

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def value(v):
    kind = v.WhichOneof("value")
    return [kind, getattr(v, kind) if kind else None]


req = ExportLogsServiceRequest()
req.ParseFromString(sys.stdin.buffer.read())
for rl in req.resource_logs:
    resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
    for sl in rl.scope_logs:
        for r in sl.log_records:
            print(json.dumps({
                "resource": resource,
                "scope": [sl.scope.name, sl.scope.version],
                "time_unix_nano": r.time_unix_nano,
                "observed_time_unix_nano": r.observed_time_unix_nano,
                "severity_number": r.severity_number,
                "severity_text": r.severity_text,
                "event_name": r.event_name,
                "body": value(r.body),
                "attributes": {kv.key: value(kv.value) for kv in r.attributes},
                "attribute_count": len(r.attributes),
            }))
