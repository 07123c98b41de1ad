# The function (modes direct and forwarder), its role and its own log group.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  lambda    = var.mode != "firehose"
  region    = data.aws_region.current.id
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition

  function_log_group = "/aws/lambda/${var.name}"

  # Code: an image, a zip in S3, a local zip, or (forwarder mode only) forwarder.py packed here.
  use_image         = var.lambda_promtail_image != ""
  use_bucket        = !local.use_image && var.lambda_promtail_binary_bucket != ""
  use_local_zip     = !local.use_image && !local.use_bucket && var.lambda_zip != ""
  use_forwarder_src = local.lambda && !local.use_image && !local.use_bucket && var.lambda_zip == ""
  # The forwarder alone is one file at the zip's root; every other artefact holds the relay package.
  handler = var.mode == "direct" ? "relay.aws.lambda_handler.handler" : (
    local.use_forwarder_src ? "forwarder.handler" : "relay.aws.forwarder.handler"
  )

  ssm_parameter_arns = compact([var.username_parameter_arn, var.password_parameter_arn, var.bearer_token_parameter_arn])
  secret_arns        = compact([var.username_secret_arn, var.password_secret_arn, var.bearer_token_secret_arn])

  # LOKI_STAGE_CONFIGS: a string is taken as JSON already; a list written in HCL is encoded here.
  direct_environment = {
    WRITE_ADDRESS            = var.write_address
    USERNAME                 = try(coalesce(var.username_secret_arn, var.username_parameter_arn, var.username), "")
    PASSWORD                 = try(coalesce(var.password_secret_arn, var.password_parameter_arn, var.password), "")
    BEARER_TOKEN             = try(coalesce(var.bearer_token_secret_arn, var.bearer_token_parameter_arn, var.bearer_token), "")
    TENANT_ID                = var.tenant_id
    KEEP_STREAM              = var.keep_stream
    BATCH_SIZE               = var.batch_size
    EXTRA_LABELS             = var.extra_labels
    OMIT_EXTRA_LABELS_PREFIX = var.omit_extra_labels_prefix ? "true" : "false"
    DROP_LABELS              = var.drop_labels
    RELABEL_CONFIGS          = var.relabel_configs
    LOKI_STAGE_CONFIGS       = can(tostring(var.loki_stage_configs)) ? tostring(var.loki_stage_configs) : jsonencode(var.loki_stage_configs)
    PIPELINE_TIMEOUT         = var.pipeline_timeout
    SKIP_TLS_VERIFY          = var.skip_tls_verify
    PRINT_LOG_LINE           = var.print_log_line
  }
  forwarder_environment = {
    RELAY_URL             = var.relay_url
    RELAY_USERNAME        = var.username
    RELAY_PASSWORD        = var.password
    RELAY_BEARER_TOKEN    = var.bearer_token
    RELAY_TENANT_ID       = var.tenant_id
    RELAY_SKIP_TLS_VERIFY = var.skip_tls_verify
  }
}

data "archive_file" "forwarder" {
  count       = local.use_forwarder_src ? 1 : 0
  type        = "zip"
  source_file = "${path.module}/../../../relay/aws/forwarder.py"
  output_path = "${path.module}/.build/forwarder.zip"
}

#-- role -------------------------------------------------------------------------------------------

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "lambda" {
  count              = local.lambda ? 1 : 0
  name               = var.name
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "lambda_vpc" {
  count      = local.lambda && length(var.lambda_vpc_subnets) > 0 ? 1 : 0
  role       = aws_iam_role.lambda[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
}

data "aws_iam_policy_document" "lambda" {
  count = local.lambda ? 1 : 0
  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.lambda[0].arn}:*"]
  }
  statement {
    sid       = "FailedEvents"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.failed_events[0].arn]
  }
  dynamic "statement" {
    for_each = var.kms_key_arn != "" ? [1] : []
    content {
      sid       = "Kms"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [var.kms_key_arn]
    }
  }
  dynamic "statement" {
    for_each = length(var.bucket_names) > 0 ? [1] : []
    content {
      sid       = "ReadLogObjects"
      actions   = ["s3:GetObject"]
      resources = [for b in var.bucket_names : "arn:${local.partition}:s3:::${b}/${var.filter_prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = length(var.kinesis_stream_name) > 0 ? [1] : []
    content {
      sid = "ReadKinesis"
      actions = [
        "kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:GetRecords",
        "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams", "kinesis:SubscribeToShard",
      ]
      resources = [for s in aws_kinesis_stream.this : s.arn]
    }
  }
  dynamic "statement" {
    for_each = var.sqs_enabled ? [1] : []
    content {
      sid       = "ReadQueue"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]
      resources = [aws_sqs_queue.main[0].arn]
    }
  }
  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) > 0 ? [1] : []
    content {
      sid       = "CredentialParameters"
      actions   = ["ssm:GetParameter"]
      resources = local.ssm_parameter_arns
    }
  }
  dynamic "statement" {
    for_each = length(local.secret_arns) > 0 ? [1] : []
    content {
      sid       = "CredentialSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secret_arns
    }
  }
}

resource "aws_iam_role_policy" "lambda" {
  count  = local.lambda ? 1 : 0
  name   = "${var.name}-access"
  role   = aws_iam_role.lambda[0].name
  policy = data.aws_iam_policy_document.lambda[0].json
}

#-- function ---------------------------------------------------------------------------------------

resource "aws_cloudwatch_log_group" "lambda" {
  #checkov:skip=CKV_AWS_338:retention is log_retention_days (default as lambda-promtail's); a year of the shipper's own logs is cost without use
  count             = local.lambda ? 1 : 0
  name              = local.function_log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn != "" ? var.kms_key_arn : null
  tags              = var.tags
}

# Asynchronous invocations (CloudWatch Logs, S3 notifications, EventBridge) that still fail after
# Lambda's two retries land here instead of being lost.
resource "aws_sqs_queue" "failed_events" {
  count                             = local.lambda ? 1 : 0
  name                              = "${var.name}-failed-events"
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = var.kms_key_arn == "" ? true : null
  kms_master_key_id                 = var.kms_key_arn != "" ? var.kms_key_arn : null
  kms_data_key_reuse_period_seconds = var.kms_key_arn != "" ? 3600 : null
  tags                              = var.tags
}

resource "aws_lambda_function" "this" {
  count = local.lambda ? 1 : 0
  #checkov:skip=CKV_AWS_272:code signing needs a signing profile the user owns; the zip is built from this repository
  #checkov:skip=CKV_AWS_117:runs in a VPC only when lambda_vpc_subnets is set, as in lambda-promtail; Loki is often outside any VPC
  #checkov:skip=CKV_AWS_115:reserved_concurrency is a variable (-1 = unreserved), as reserving by default takes from the account's pool
  #checkov:skip=CKV_AWS_173:environment is encrypted with AWS's key unless kms_key_arn is given; secrets belong in *_secret_arn
  function_name = var.name
  role          = aws_iam_role.lambda[0].arn
  architectures = [var.architecture]
  memory_size   = var.memory_size
  timeout       = var.timeout
  kms_key_arn   = var.kms_key_arn != "" ? var.kms_key_arn : null

  reserved_concurrent_executions = var.reserved_concurrency

  package_type     = local.use_image ? "Image" : "Zip"
  image_uri        = local.use_image ? var.lambda_promtail_image : null
  s3_bucket        = local.use_bucket ? var.lambda_promtail_binary_bucket : null
  s3_key           = local.use_bucket ? var.lambda_promtail_binary_key : null
  filename         = local.use_local_zip ? var.lambda_zip : (local.use_forwarder_src ? data.archive_file.forwarder[0].output_path : null)
  source_code_hash = local.use_local_zip ? filebase64sha256(var.lambda_zip) : (local.use_forwarder_src ? data.archive_file.forwarder[0].output_base64sha256 : null)
  runtime          = local.use_image ? null : var.runtime
  handler          = local.use_image ? null : local.handler

  dynamic "image_config" {
    for_each = local.use_image ? [1] : []
    content {
      command = [local.handler]
    }
  }

  vpc_config {
    subnet_ids         = var.lambda_vpc_subnets
    security_group_ids = var.lambda_vpc_security_groups
  }

  dead_letter_config {
    target_arn = aws_sqs_queue.failed_events[0].arn
  }

  tracing_config {
    mode = "PassThrough"
  }

  environment {
    variables = var.mode == "direct" ? local.direct_environment : local.forwarder_environment
  }

  lifecycle {
    precondition {
      condition     = var.mode != "direct" || can(regex("^https?://", var.write_address))
      error_message = "write_address must be an http(s):// URL in direct mode."
    }
    precondition {
      condition     = var.mode != "forwarder" || can(regex("^https?://", var.relay_url))
      error_message = "relay_url must be set to the relay's http(s):// URL in forwarder mode."
    }
    precondition {
      condition     = var.mode != "forwarder" || length(concat(local.ssm_parameter_arns, local.secret_arns)) == 0
      error_message = "the forwarder takes credentials as values (username, password, bearer_token), not as *_secret_arn / *_parameter_arn."
    }
    precondition {
      condition     = var.mode != "direct" || !local.use_forwarder_src
      error_message = "direct mode needs a function artefact: lambda_zip, lambda_promtail_image or lambda_promtail_binary_bucket."
    }
  }

  tags = var.tags

  depends_on = [aws_iam_role_policy.lambda, aws_iam_role_policy_attachment.lambda_vpc, aws_cloudwatch_log_group.lambda]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  count                  = local.lambda ? 1 : 0
  function_name          = aws_lambda_function.this[0].function_name
  maximum_retry_attempts = 2
}
