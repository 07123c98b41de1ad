"""The `aws_lambda` job kind's settings and labels, shared by the HTTP job
(`relay.sources.http.aws_lambda`) and the Lambda function (`relay.aws.lambda_handler`).

    scrape_configs:
      - job_name: aws
        aws_lambda:
          server: {http_listen_address: 0.0.0.0, http_listen_port: 3600}
          labels: {job: aws}
          keep_stream: false                 # add __aws_cloudwatch_log_stream
          extra_labels: "env,prod,team,ops"  # lambda-promtail's EXTRA_LABELS form, or a mapping
          omit_extra_labels_prefix: false    # true: `env` instead of `__extra_env`
          drop_labels: [__aws_s3_key]        # a list (or lambda-promtail's comma-separated string)
          use_incoming_timestamp: true       # the events' own times (false: receive time)
          max_send_msg_size: 100MB           # largest request body accepted
          s3:                                # how S3 objects named by notifications are fetched
            region: eu-west-1                # default: the event's awsRegion, else the AWS chain's
            endpoint_url: ""                 # e.g. a MinIO or moto server
            force_path_style: false
            access_key_id: ""                # default: the standard AWS credential chain
            secret_access_key: ""
            session_token: ""
            max_attempts: 3                  # botocore retries per S3 call
        relabel_configs: [...]               # replace the default rules below

Label order (as lambda-promtail): the source's labels, then the extra labels (they win
over a source label of the same name), then `drop_labels` are removed; then, as for every
job, the static `labels`, the relabel rules, and removal of every `__*` label.

Default rules (only when the job has no `relabel_configs`; any given rules replace them,
so copy what you need). Each rule copies a label only when its source is non-empty:

    log_type     <- __aws_log_type          cloudwatch, kinesis, sqs, sns, eventbridge, s3_lb, s3_vpc_flow,
                                            s3_cloudtrail, s3_cloudfront, s3_waf, s3_guardduty, s3_msk,
                                            s3_access, s3 (an S3 key of no known layout)
    log_group    <- __aws_cloudwatch_log_group
    log_stream   <- __aws_cloudwatch_log_stream          (only present with keep_stream)
    source       <- __aws_s3_<type> (LB name, flow-log id, trail file id, distribution, web ACL, MSK
                    cluster, source bucket) or __aws_eventbridge_source
    owner        <- __aws_cloudwatch_owner or __aws_s3_<type>_owner (the account)
    bucket       <- __aws_s3_bucket
    source_arn   <- __aws_kinesis_event_source_arn, __aws_sqs_queue_arn or __aws_sns_topic_arn
    detail_type  <- __aws_eventbridge_detail_type
    <name>       <- __extra_<name>          (labelmap: extra labels arrive without their prefix)

`__aws_s3_key` is not copied by default: object keys would make one stream per file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import relabel
from ..keys import ConfigError, Keys
from ..model import LABEL_NAME, Labels
from .s3 import S3Settings, parse_s3

KIND = "aws_lambda"
DEFAULT_PORT = 3600
EXTRA_PREFIX = "__extra_"

_S3_TYPES = ("s3_lb", "s3_vpc_flow", "s3_cloudtrail", "s3_cloudfront", "s3_waf", "s3_guardduty", "s3_msk", "s3_access")


def _copy(sources: Sequence[str], target: str) -> dict[str, Any]:
    # separator "": only one of the sources is ever set on a stream; (.+) leaves an absent label absent
    return {"source_labels": list(sources), "separator": "", "regex": "(.+)", "target_label": target}


DEFAULT_RULES_CONFIG: list[dict[str, Any]] = [
    _copy(["__aws_log_type"], "log_type"),
    _copy(["__aws_cloudwatch_log_group"], "log_group"),
    _copy(["__aws_cloudwatch_log_stream"], "log_stream"),
    _copy([f"__aws_{t}" for t in _S3_TYPES if t != "s3_guardduty"] + ["__aws_eventbridge_source"], "source"),
    _copy(["__aws_cloudwatch_owner"] + [f"__aws_{t}_owner" for t in _S3_TYPES], "owner"),
    _copy(["__aws_s3_bucket"], "bucket"),
    _copy(["__aws_kinesis_event_source_arn", "__aws_sqs_queue_arn", "__aws_sns_topic_arn"], "source_arn"),
    _copy(["__aws_eventbridge_detail_type"], "detail_type"),
    {"action": "labelmap", "regex": EXTRA_PREFIX + "(.+)", "replacement": "$1"},
]
DEFAULT_RULES: list[relabel.Rule] = relabel.compile_rules(DEFAULT_RULES_CONFIG)

@dataclass(slots=True)
class LambdaSettings:
    keep_stream: bool = False
    extra_labels: dict[str, str] = field(default_factory=dict)  # names already prefixed
    drop_labels: tuple[str, ...] = ()
    s3: S3Settings = field(default_factory=S3Settings)

    def apply(self, labels: Labels) -> Labels:
        """Extra labels, then drop_labels, in place (lambda-promtail's applyLabels before relabeling)."""
        if self.extra_labels:
            labels.update(self.extra_labels)
        for name in self.drop_labels:
            labels.pop(name, None)
        return labels


def parse_extra_labels(value: Any, omit_prefix: bool, where: str) -> dict[str, str]:
    """lambda-promtail's "name1,value1,name2,value2" string, or a mapping; names get `__extra_` unless omitted."""
    prefix = "" if omit_prefix else EXTRA_PREFIX
    pairs: list[tuple[str, str]]
    if value is None or value == "":
        return {}
    if isinstance(value, Mapping):
        pairs = [(str(k), "" if v is None else str(v)) for k, v in value.items()]
    elif isinstance(value, str):
        parts = value.split(",")
        if len(parts) % 2:
            raise ConfigError(f"{where}: expected a comma-separated list of name,value pairs (an even number of "
                              f"items), got {len(parts)} items")
        pairs = [(parts[i].strip(), parts[i + 1]) for i in range(0, len(parts), 2)]
    else:
        raise ConfigError(f"{where}: expected \"name1,value1,...\" or a mapping, got {type(value).__name__}")
    out: dict[str, str] = {}
    for name, v in pairs:
        full = prefix + name
        if not LABEL_NAME.fullmatch(full):
            raise ConfigError(f"{where}: invalid label name {name!r}")
        out[full] = v
    return out


def parse_drop_labels(value: Any, where: str) -> tuple[str, ...]:
    """A list of label names, or lambda-promtail's comma-separated string."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        names = value.split(",")
    elif isinstance(value, list):
        names = value
    else:
        raise ConfigError(f"{where}: expected a list of label names, got {type(value).__name__}")
    out = []
    for n in names:
        name = str(n).strip() if isinstance(n, str) else n
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: invalid label name {n!r}")
        out.append(name)
    return tuple(out)


def parse_block(k: Keys) -> LambdaSettings:
    """The keys of an `aws_lambda` block beyond those every job kind shares."""
    s = LambdaSettings()
    s.keep_stream = k.get_bool("keep_stream")
    omit = k.get_bool("omit_extra_labels_prefix")
    s.extra_labels = parse_extra_labels(k.get("extra_labels"), omit, k.at("extra_labels"))
    s.drop_labels = parse_drop_labels(k.get("drop_labels"), k.at("drop_labels"))
    if k.has("s3"):
        s.s3 = parse_s3(k.block("s3"))
    return s
