# sqs_enabled: S3 notifications go to a queue; the function reads it in batches and reports the
# messages it could not ship (ReportBatchItemFailures), which come back until they reach the
# dead-letter queue after sqs_max_receive_count receives.

locals {
  sqs          = local.lambda && var.sqs_enabled
  sqs_main     = "${var.sqs_queue_name_prefix}-main-queue"
  sqs_dead     = "${var.sqs_queue_name_prefix}-dead-letter-queue"
  sqs_kms      = var.kms_key_arn != "" ? var.kms_key_arn : null
  sqs_aws_sse  = var.kms_key_arn == "" ? true : null
  sqs_kms_time = var.kms_key_arn != "" ? 3600 : null
}

data "aws_iam_policy_document" "queue" {
  count = local.sqs ? 1 : 0
  statement {
    actions   = ["sqs:SendMessage"]
    resources = ["arn:${local.partition}:sqs:${local.region}:${local.account}:${local.sqs_main}"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = local.s3_bucket_arns
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_sqs_queue" "dead_letter" {
  count                             = local.sqs ? 1 : 0
  name                              = local.sqs_dead
  message_retention_seconds         = 1209600
  sqs_managed_sse_enabled           = local.sqs_aws_sse
  kms_master_key_id                 = local.sqs_kms
  kms_data_key_reuse_period_seconds = local.sqs_kms_time
  tags                              = var.tags
}

resource "aws_sqs_queue" "main" {
  count                             = local.sqs ? 1 : 0
  name                              = local.sqs_main
  policy                            = data.aws_iam_policy_document.queue[0].json
  visibility_timeout_seconds        = var.timeout * 6 # AWS's advice for queues that trigger a function
  sqs_managed_sse_enabled           = local.sqs_aws_sse
  kms_master_key_id                 = local.sqs_kms
  kms_data_key_reuse_period_seconds = local.sqs_kms_time
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter[0].arn
    maxReceiveCount     = var.sqs_max_receive_count
  })
  tags = var.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dead_letter" {
  count     = local.sqs ? 1 : 0
  queue_url = aws_sqs_queue.dead_letter[0].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.main[0].arn]
  })
}

resource "aws_s3_bucket_notification" "sqs" {
  for_each = local.sqs ? var.bucket_names : toset([])
  bucket   = each.value

  dynamic "queue" {
    for_each = local.s3_suffixes
    content {
      queue_arn     = aws_sqs_queue.main[0].arn
      events        = ["s3:ObjectCreated:*"]
      filter_prefix = var.filter_prefix
      filter_suffix = queue.value
    }
  }
}

resource "aws_lambda_event_source_mapping" "sqs" {
  count                   = local.sqs ? 1 : 0
  event_source_arn        = aws_sqs_queue.main[0].arn
  function_name           = aws_lambda_function.this[0].arn
  batch_size              = var.sqs_batch_size
  function_response_types = ["ReportBatchItemFailures"]
}
