# Variables named as in lambda-promtail's module keep their meaning there, so a lambda-promtail
# `terraform apply -var ...` command works unchanged. The others are ours and say so.

#-- what runs ------------------------------------------------------------------------------------

variable "mode" {
  type        = string
  description = "ours: direct (the function parses events and pushes to Loki, like lambda-promtail), forwarder (the function POSTs each event to a loki-relay at relay_url), or firehose (no function: log groups are subscribed to a Firehose stream that delivers to a loki-relay)."
  default     = "direct"
  validation {
    condition     = contains(["direct", "forwarder", "firehose"], var.mode)
    error_message = "mode must be direct, forwarder or firehose."
  }
}

variable "name" {
  type        = string
  description = "Name of the function, its role and log group, and the prefix of other resources."
  default     = "lambda_promtail"
}

variable "lambda_zip" {
  type        = string
  description = "ours: path of the function zip built by deploy/aws/lambda/build.py (used when neither lambda_promtail_image nor lambda_promtail_binary_bucket is set). Forwarder mode needs no zip: the module packs relay/aws/forwarder.py itself when this is empty."
  default     = ""
}

variable "lambda_promtail_image" {
  type        = string
  description = "ECR image URI of the function (built from deploy/aws/lambda/Dockerfile); empty for a zip."
  default     = ""
}

variable "lambda_promtail_binary_bucket" {
  type        = string
  description = "S3 bucket holding the function zip, instead of a local file."
  default     = ""
}

variable "lambda_promtail_binary_key" {
  type        = string
  description = "S3 key of the function zip in lambda_promtail_binary_bucket."
  default     = "lambda-promtail.zip"
}

variable "architecture" {
  type        = string
  description = "ours: x86_64 or arm64; must match the zip (build.py --arch) or image."
  default     = "x86_64"
  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "runtime" {
  type        = string
  description = "ours: the Python runtime of a zip function; must match build.py --python."
  default     = "python3.12"
}

variable "memory_size" {
  type        = number
  description = "ours: function memory in MB."
  default     = 256
}

variable "timeout" {
  type        = number
  description = "ours: function timeout in seconds (an S3 object is read through in one invocation)."
  default     = 60
}

variable "reserved_concurrency" {
  type        = number
  description = "ours: reserved concurrent executions of the function; -1 for none."
  default     = -1
}

variable "log_retention_days" {
  type        = number
  description = "ours: retention of the function's own log group."
  default     = 14
}

#-- where logs go ---------------------------------------------------------------------------------

variable "write_address" {
  type        = string
  description = "Loki push endpoint, http(s)://<host>/loki/api/v1/push (direct mode)."
  default     = "http://localhost:8080/loki/api/v1/push"
}

variable "relay_url" {
  type        = string
  description = "ours: the relay's aws_lambda endpoint, https://<relay>/awslambda/api/v1/push (forwarder mode)."
  default     = ""
}

variable "username" {
  type        = string
  description = "Basic auth user for Loki (direct) or the relay (forwarder)."
  default     = ""
}

variable "username_parameter_arn" {
  type        = string
  description = "SSM parameter ARN holding the basic auth user (direct mode)."
  default     = ""
}

variable "username_secret_arn" {
  type        = string
  description = "Secrets Manager secret ARN holding the basic auth user (direct mode)."
  default     = ""
}

variable "password" {
  type        = string
  description = "Basic auth password for Loki (direct) or the relay (forwarder)."
  default     = ""
  sensitive   = true
}

variable "password_parameter_arn" {
  type        = string
  description = "SSM parameter ARN holding the basic auth password (direct mode)."
  default     = ""
}

variable "password_secret_arn" {
  type        = string
  description = "Secrets Manager secret ARN holding the basic auth password (direct mode)."
  default     = ""
}

variable "bearer_token" {
  type        = string
  description = "Bearer token for Loki (direct) or the relay (forwarder)."
  default     = ""
  sensitive   = true
}

variable "bearer_token_parameter_arn" {
  type        = string
  description = "SSM parameter ARN holding the bearer token (direct mode)."
  default     = ""
}

variable "bearer_token_secret_arn" {
  type        = string
  description = "Secrets Manager secret ARN holding the bearer token (direct mode)."
  default     = ""
}

variable "tenant_id" {
  type        = string
  description = "Tenant sent as X-Scope-OrgID (direct and forwarder modes)."
  default     = ""
}

variable "skip_tls_verify" {
  type        = string
  description = "\"true\" to skip TLS certificate checks."
  default     = "false"
}

#-- labels and batching (direct mode) -----------------------------------------------------------

variable "keep_stream" {
  type        = string
  description = "\"true\" keeps the CloudWatch log stream as a label."
  default     = "false"
}

variable "print_log_line" {
  type        = string
  description = "\"false\" stops the function printing each line to its own log."
  default     = "true"
}

variable "extra_labels" {
  type        = string
  description = "\"name1,value1,name2,value2\": labels added to every stream."
  default     = ""
}

variable "omit_extra_labels_prefix" {
  type        = bool
  description = "Name extra labels <name> instead of __extra_<name>."
  default     = false
}

variable "drop_labels" {
  type        = string
  description = "\"name1,name2\": labels removed before relabeling."
  default     = ""
}

variable "relabel_configs" {
  type        = string
  description = "JSON list of Prometheus relabel rules applied to every stream."
  default     = ""
}

variable "loki_stage_configs" {
  type        = any
  description = "Promtail pipeline stages run on every entry after relabeling (LOKI_STAGE_CONFIGS): a list such as [{ json = { expressions = { level = \"level\" } } }, { labels = { level = \"\" } }], or that list already JSON-encoded as a string. lambda-promtail reads the variable but its module does not set it."
  default     = ""
}

variable "pipeline_timeout" {
  type        = string
  description = "Go duration (e.g. 1s, 500ms): the longest a pipeline stage may hold an entry (PIPELINE_TIMEOUT); empty for the default (1s)."
  default     = ""
  validation {
    condition     = var.pipeline_timeout == "" || can(regex("^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", var.pipeline_timeout))
    error_message = "pipeline_timeout must be a Go duration such as 1s or 500ms."
  }
}

variable "batch_size" {
  type        = string
  description = "Bytes of entries per push; empty for the default (131072)."
  default     = ""
}

#-- network and encryption ------------------------------------------------------------------------

variable "lambda_vpc_subnets" {
  type        = list(string)
  description = "Subnet IDs for the function; empty runs it outside a VPC."
  default     = []
}

variable "lambda_vpc_security_groups" {
  type        = list(string)
  description = "Security group IDs for the function."
  default     = []
}

variable "kms_key_arn" {
  type        = string
  description = "KMS key ARN encrypting the function's environment (and, ours, its log group and the SQS queues)."
  default     = ""
}

#-- CloudWatch Logs ---------------------------------------------------------------------------------

variable "log_group_names" {
  type        = set(string)
  description = "Log groups to subscribe, with an empty filter pattern."
  default     = []
}

variable "log_groups" {
  type = map(object({
    filter_pattern = optional(string, "")
  }))
  description = "ours: log groups to subscribe, each with its own filter pattern: { \"/aws/lambda/api\" = { filter_pattern = \"?ERROR ?WARN\" } }."
  default     = {}
}

variable "account_subscription_policy" {
  type = object({
    enabled            = bool
    selection_criteria = optional(string, "")
    filter_pattern     = optional(string, "")
  })
  description = "ours: one account-level subscription filter policy that subscribes every log group of the region, including ones created later. selection_criteria narrows it (AWS takes LogGroupName NOT IN [...]); empty excludes the function's own log group, which a criteria of yours must exclude too, or the function reads its own output."
  default     = { enabled = false }
}

#-- S3 ---------------------------------------------------------------------------------------------

variable "bucket_names" {
  type        = set(string)
  description = "S3 buckets whose new objects are read."
  default     = []
}

variable "filter_prefix" {
  type        = string
  description = "Key prefix of the S3 objects read."
  default     = "AWSLogs/"
}

variable "filter_suffix" {
  type        = string
  description = "Key suffix of the S3 objects read; empty for any key."
  default     = ".gz"
}

variable "filter_suffixes" {
  type        = list(string)
  description = "ours: several key suffixes (e.g. [\".gz\", \".log\"]); when set, replaces filter_suffix. S3 notifications need suffixes that do not end one another; EventBridge has no such rule."
  default     = []
}

variable "s3_event_source" {
  type        = string
  description = "ours: how new S3 objects reach the function: notification (bucket notifications, lambda-promtail's way) or eventbridge (an EventBridge rule; the buckets need EventBridge notifications turned on, which this module does not change). sqs_enabled puts an SQS queue between S3 notifications and the function instead."
  default     = "notification"
  validation {
    condition     = contains(["notification", "eventbridge"], var.s3_event_source)
    error_message = "s3_event_source must be notification or eventbridge."
  }
}

variable "sqs_enabled" {
  type        = bool
  description = "Send S3 notifications to an SQS queue (with a dead-letter queue) that triggers the function."
  default     = false
}

variable "sqs_queue_name_prefix" {
  type        = string
  description = "Name prefix of the SQS queues."
  default     = "s3-to-lambda-promtail"
}

variable "sqs_max_receive_count" {
  type        = number
  description = "ours: receives of a message before it moves to the dead-letter queue."
  default     = 5
}

variable "sqs_batch_size" {
  type        = number
  description = "ours: messages per invocation; failed ones come back through ReportBatchItemFailures."
  default     = 10
}

#-- Kinesis ----------------------------------------------------------------------------------------

variable "kinesis_stream_name" {
  type        = set(string)
  description = "Kinesis streams to create and read."
  default     = []
}

#-- Firehose mode ----------------------------------------------------------------------------------

variable "firehose_url" {
  type        = string
  description = "ours: the relay's Firehose endpoint, https://<relay>/awsfirehose/api/v1/push (Firehose delivers over HTTPS only)."
  default     = ""
}

variable "firehose_access_key_secret_arn" {
  type        = string
  description = "ours: Secrets Manager secret holding the relay's access_key as JSON {\"api_key\": \"...\"}; Firehose reads it at delivery time."
  default     = ""
}

variable "firehose_common_attributes" {
  type        = map(string)
  description = "ours: labels sent with every delivery (each becomes the request attribute lbl_<name>)."
  default     = {}
}

variable "firehose_tenant_id" {
  type        = string
  description = "ours: tenant of the delivered streams (the tenant_id request attribute); empty for the relay's default."
  default     = ""
}

variable "firehose_buffering_size" {
  type        = number
  description = "ours: MiB Firehose buffers before a delivery (1 to 64)."
  default     = 1
}

variable "firehose_buffering_interval" {
  type        = number
  description = "ours: seconds Firehose buffers before a delivery (0 to 900)."
  default     = 60
}

variable "firehose_retry_duration" {
  type        = number
  description = "ours: seconds Firehose keeps retrying a delivery before the records go to the backup bucket."
  default     = 300
}

variable "firehose_backup_bucket_name" {
  type        = string
  description = "ours: name of the bucket created for records Firehose could not deliver; empty for <name>-firehose-backup-<account>."
  default     = ""
}

variable "tags" {
  type        = map(string)
  description = "ours: tags on every resource that takes them."
  default     = {}
}
