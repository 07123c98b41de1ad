"""Lambda functions for AWS.

- `relay.aws.forwarder.handler`: a single file using only the standard library; POSTs each
  event to a relay's `aws_lambda` job (`/awslambda/api/v1/push`). Package just that file.
- `relay.aws.lambda_handler.handler`: a drop-in for lambda-promtail that parses in-process
  and pushes straight to Loki, configured by lambda-promtail's environment variables.
"""
