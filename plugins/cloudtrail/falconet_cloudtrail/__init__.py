"""falconet's cloudtrail plugin: AWS CloudTrail events (source ``aws_cloudtrail``).

Registered through the ``falconet`` entry point (``plugin.py``) with its field table
(``fields.py``) and its event source (``source.py``): local files (``files.py``), S3 and SQS,
all turning log files into events with ``records.records_from_bytes``. See the README.
"""

from falconet_cloudtrail.fields import (
    PLUGIN_NAME,
    SOURCE,
    cloudtrail_field_specs,
    cloudtrail_field_table,
)

__all__ = ["PLUGIN_NAME", "SOURCE", "cloudtrail_field_specs", "cloudtrail_field_table"]
