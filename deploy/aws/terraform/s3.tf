# New S3 objects reach the function through bucket notifications (lambda-promtail's way), an
# SQS queue (sqs_enabled, see sqs.tf) or an EventBridge rule (s3_event_source = "eventbridge").

locals {
  s3_suffixes     = length(var.filter_suffixes) > 0 ? var.filter_suffixes : [var.filter_suffix]
  s3_notify       = local.lambda && !var.sqs_enabled && var.s3_event_source == "notification" ? var.bucket_names : toset([])
  s3_eventbridge  = local.lambda && !var.sqs_enabled && var.s3_event_source == "eventbridge" && length(var.bucket_names) > 0
  s3_bucket_arns  = [for b in var.bucket_names : "arn:${local.partition}:s3:::${b}"]
  s3_key_patterns = [for s in local.s3_suffixes : { wildcard = "${var.filter_prefix}*${s}" }]
}

resource "aws_lambda_permission" "s3" {
  for_each       = local.s3_notify
  statement_id   = "${var.name}-allow-s3-${each.value}"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this[0].arn
  principal      = "s3.amazonaws.com"
  source_arn     = "arn:${local.partition}:s3:::${each.value}"
  source_account = local.account
}

resource "aws_s3_bucket_notification" "lambda" {
  for_each = local.s3_notify
  bucket   = each.value

  dynamic "lambda_function" {
    for_each = local.s3_suffixes
    content {
      lambda_function_arn = aws_lambda_function.this[0].arn
      events              = ["s3:ObjectCreated:*"]
      filter_prefix       = var.filter_prefix
      filter_suffix       = lambda_function.value
    }
  }

  depends_on = [aws_lambda_permission.s3]
}

resource "aws_cloudwatch_event_rule" "s3" {
  count       = local.s3_eventbridge ? 1 : 0
  name        = "${var.name}-s3-object-created"
  description = "New log objects for ${var.name}"
  event_pattern = jsonencode({
    source        = ["aws.s3"]
    "detail-type" = ["Object Created"]
    detail = {
      bucket = { name = tolist(var.bucket_names) }
      object = { key = local.s3_key_patterns }
    }
  })
  tags = var.tags
}

resource "aws_cloudwatch_event_target" "s3" {
  count = local.s3_eventbridge ? 1 : 0
  rule  = aws_cloudwatch_event_rule.s3[0].name
  arn   = aws_lambda_function.this[0].arn
}

resource "aws_lambda_permission" "eventbridge" {
  count         = local.s3_eventbridge ? 1 : 0
  statement_id  = "${var.name}-allow-eventbridge"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[0].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.s3[0].arn
}
