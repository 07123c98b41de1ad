# mode = "firehose": CloudWatch Logs -> Firehose -> the relay's /awsfirehose/api/v1/push, with
# records Firehose could not deliver kept in an S3 bucket. No function.

locals {
  firehose        = var.mode == "firehose"
  firehose_bucket = var.firehose_backup_bucket_name != "" ? var.firehose_backup_bucket_name : "${replace(var.name, "_", "-")}-firehose-backup-${local.account}"
  # Every lbl_<name> attribute becomes a label at the relay; tenant_id picks the tenant.
  firehose_attributes = merge(
    { for k, v in var.firehose_common_attributes : "lbl_${k}" => v },
    var.firehose_tenant_id != "" ? { tenant_id = var.firehose_tenant_id } : {},
  )
}

#-- backup bucket ----------------------------------------------------------------------------------

resource "aws_s3_bucket" "firehose_backup" {
  count = local.firehose ? 1 : 0
  #checkov:skip=CKV_AWS_18:access logging of a bucket only Firehose writes to would need a second bucket per deployment
  #checkov:skip=CKV_AWS_144:cross-region replication of undeliverable log records is out of proportion; they expire
  #checkov:skip=CKV2_AWS_62:nothing consumes events of this bucket
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) is set; a KMS key would be one more thing the user must own
  bucket = local.firehose_bucket
  tags   = var.tags
}

resource "aws_s3_bucket_public_access_block" "firehose_backup" {
  count                   = local.firehose ? 1 : 0
  bucket                  = aws_s3_bucket.firehose_backup[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "firehose_backup" {
  count  = local.firehose ? 1 : 0
  bucket = aws_s3_bucket.firehose_backup[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_versioning" "firehose_backup" {
  count  = local.firehose ? 1 : 0
  bucket = aws_s3_bucket.firehose_backup[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "firehose_backup" {
  count  = local.firehose ? 1 : 0
  bucket = aws_s3_bucket.firehose_backup[0].id
  rule {
    id     = "expire-failed-records"
    status = "Enabled"
    filter {}
    expiration {
      days = 30
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

#-- Firehose's own role: write the backup bucket, read the access key, log delivery errors ---------

data "aws_iam_policy_document" "assume_firehose" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "firehose" {
  count              = local.firehose ? 1 : 0
  name               = "${var.name}-firehose"
  assume_role_policy = data.aws_iam_policy_document.assume_firehose.json
  tags               = var.tags
}

data "aws_iam_policy_document" "firehose" {
  count = local.firehose ? 1 : 0
  statement {
    sid = "BackupBucket"
    actions = [
      "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:GetObject",
      "s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:PutObject",
    ]
    resources = [aws_s3_bucket.firehose_backup[0].arn, "${aws_s3_bucket.firehose_backup[0].arn}/*"]
  }
  statement {
    sid       = "AccessKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.firehose_access_key_secret_arn]
  }
  statement {
    sid       = "DeliveryErrors"
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose[0].arn}:*"]
  }
}

resource "aws_iam_role_policy" "firehose" {
  count  = local.firehose ? 1 : 0
  name   = "${var.name}-firehose-access"
  role   = aws_iam_role.firehose[0].name
  policy = data.aws_iam_policy_document.firehose[0].json
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:retention is log_retention_days (default as lambda-promtail's); a year of the shipper's own logs is cost without use
  count             = local.firehose ? 1 : 0
  name              = "/aws/kinesisfirehose/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn != "" ? var.kms_key_arn : null
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "firehose" {
  count          = local.firehose ? 1 : 0
  name           = "HttpEndpointDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose[0].name
}

#-- delivery stream --------------------------------------------------------------------------------

resource "aws_kinesis_firehose_delivery_stream" "this" {
  #checkov:skip=CKV_AWS_241:encrypted with an AWS-owned key unless kms_key_arn is given, then with that key
  count       = local.firehose ? 1 : 0
  name        = var.name
  destination = "http_endpoint"

  server_side_encryption {
    enabled  = true
    key_type = var.kms_key_arn != "" ? "CUSTOMER_MANAGED_CMK" : "AWS_OWNED_CMK"
    key_arn  = var.kms_key_arn != "" ? var.kms_key_arn : null
  }

  http_endpoint_configuration {
    name               = "loki-relay"
    url                = var.firehose_url
    role_arn           = aws_iam_role.firehose[0].arn
    buffering_size     = var.firehose_buffering_size
    buffering_interval = var.firehose_buffering_interval
    retry_duration     = var.firehose_retry_duration
    s3_backup_mode     = "FailedDataOnly"

    secrets_manager_configuration {
      enabled    = true
      secret_arn = var.firehose_access_key_secret_arn
      role_arn   = aws_iam_role.firehose[0].arn
    }

    request_configuration {
      content_encoding = "GZIP"
      dynamic "common_attributes" {
        for_each = local.firehose_attributes
        content {
          name  = common_attributes.key
          value = common_attributes.value
        }
      }
    }

    s3_configuration {
      role_arn            = aws_iam_role.firehose[0].arn
      bucket_arn          = aws_s3_bucket.firehose_backup[0].arn
      prefix              = "failed/"
      error_output_prefix = "error/"
      compression_format  = "GZIP"
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose[0].name
      log_stream_name = aws_cloudwatch_log_stream.firehose[0].name
    }
  }

  lifecycle {
    precondition {
      condition     = can(regex("^https://", var.firehose_url))
      error_message = "firehose_url must be the relay's https:// URL (Firehose delivers over HTTPS only)."
    }
    precondition {
      condition     = can(regex("^arn:[^:]+:secretsmanager:", var.firehose_access_key_secret_arn))
      error_message = "firehose_access_key_secret_arn must be a Secrets Manager secret ARN."
    }
  }

  tags = var.tags
}

#-- CloudWatch Logs' role to put records into the stream -------------------------------------------

data "aws_iam_policy_document" "assume_logs" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["logs.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:*"]
    }
  }
}

resource "aws_iam_role" "logs_to_firehose" {
  count              = local.firehose ? 1 : 0
  name               = "${var.name}-logs-to-firehose"
  assume_role_policy = data.aws_iam_policy_document.assume_logs.json
  tags               = var.tags
}

data "aws_iam_policy_document" "logs_to_firehose" {
  count = local.firehose ? 1 : 0
  statement {
    actions   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
    resources = [aws_kinesis_firehose_delivery_stream.this[0].arn]
  }
}

resource "aws_iam_role_policy" "logs_to_firehose" {
  count  = local.firehose ? 1 : 0
  name   = "${var.name}-put-records"
  role   = aws_iam_role.logs_to_firehose[0].name
  policy = data.aws_iam_policy_document.logs_to_firehose[0].json
}
