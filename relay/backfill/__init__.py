"""`loki-relay backfill`: send the logs already in S3 or CloudWatch Logs to Loki, with resume.

    cli.py         the command line (flags before or after the URL)
    s3.py          S3 listing, pruned by the dates in key layouts
    cloudwatch.py  FilterLogEvents by time window, with throttling backoff
    stamps.py      per-entry time handling: equal times kept apart, entries too old for Loki
    job.py         the relay config (from relay.config), the job applied, Loki's age limit
    unit.py        a unit of work (an S3 object, a CloudWatch window) and its reader
    sources.py     the units of an s3:// prefix or a cloudwatch:// log group
    prescan.py     before the first push: the exact count of entries too old for Loki
    batch.py       one batch shared by the units in flight; a unit is done when its batches are
    checkpoint.py  what has been acknowledged by Loki, crash-safe
    progress.py    the progress bar or periodic log lines, and the summary
    run.py         the engine: units of work read, processed as the job does, sent, checkpointed
    deps.py        everything taken from the rest of the relay, in one place
"""
