"""Everything the relay knows about AWS, with no web framework:

- `events`: Lambda event detection and unwrapping (CloudWatch Logs, Kinesis, S3, SQS, SNS, EventBridge)
- `cloudwatch`: CloudWatch Logs subscription payloads
- `s3logs`: S3 key layouts and the parsing of each log type
- `s3`: the one module that talks to S3 (boto3 clients, objects read chunk by chunk)
- `firehose`: Firehose HTTP-endpoint delivery bodies and the `aws_firehose` settings
- `settings`: the `aws_lambda` settings, extra/drop labels and default rules
- `sqs`: SQS partial batch failures
- Lambda functions: `lambda_handler.handler` (parses in-process, pushes to Loki; a drop-in for
  lambda-promtail) and `forwarder.handler` (standard library only; POSTs each event to a relay).

The relay's HTTP job kinds over these are in `relay.sources.http`.
"""
