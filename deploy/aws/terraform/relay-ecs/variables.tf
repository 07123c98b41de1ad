variable "name" {
  type        = string
  description = "Name of the cluster, service, load balancer and the prefix of other resources."
  default     = "loki-relay"
}

variable "image" {
  type        = string
  description = "Container image of the relay (built from the repository's Dockerfile and pushed to ECR)."
}

variable "cpu_architecture" {
  type        = string
  description = "X86_64 or ARM64, as the image was built."
  default     = "X86_64"
}

variable "vpc_id" {
  type        = string
  description = "VPC of the load balancer and the tasks."
}

variable "alb_subnet_ids" {
  type        = list(string)
  description = "Subnets of the load balancer (public ones for Firehose, which calls from the internet)."
}

variable "task_subnet_ids" {
  type        = list(string)
  description = "Subnets of the tasks (private ones, with a NAT gateway or VPC endpoints to reach ECR, Logs and Loki)."
}

variable "assign_public_ip" {
  type        = bool
  description = "Give tasks a public IP (only for task subnets without a NAT gateway)."
  default     = false
}

variable "internal" {
  type        = bool
  description = "An internal load balancer (no Firehose then: it needs a public HTTPS endpoint)."
  default     = false
}

variable "certificate_arn" {
  type        = string
  description = "ACM certificate of the HTTPS listener."
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "Networks allowed to reach the load balancer on 443. Firehose calls from its regional public ranges, so firehose use needs them (or 0.0.0.0/0 with the access key as the guard)."
  default     = ["0.0.0.0/0"]
}

variable "loki_url" {
  type        = string
  description = "Loki push URL the relay sends to."
}

variable "loki_tenant_id" {
  type        = string
  description = "Tenant (X-Scope-OrgID) of the relay's client; empty for none."
  default     = ""
}

variable "loki_username" {
  type        = string
  description = "Basic auth user for Loki, with loki_password_secret_arn."
  default     = ""
}

variable "loki_password_secret_arn" {
  type        = string
  description = "Secrets Manager secret (plain string) holding the Loki password; empty for no auth."
  default     = ""
}

variable "firehose_access_key_secret_arn" {
  type        = string
  description = "Secrets Manager secret holding the Firehose access key as JSON {\"api_key\": \"...\"}, the same secret the delivery stream reads."
}

variable "relay_config" {
  type        = string
  description = "The relay's YAML config; empty for deploy/aws/relay-ecs.yaml."
  default     = ""
}

variable "s3_read_bucket_arns" {
  type        = list(string)
  description = "Buckets the relay reads log objects from when the forwarder sends it S3 events."
  default     = []
}

variable "cpu" {
  type        = number
  description = "Task CPU units."
  default     = 512
}

variable "memory" {
  type        = number
  description = "Task memory in MiB."
  default     = 1024
}

variable "ephemeral_storage_gib" {
  type        = number
  description = "Task storage in GiB (21 to 200); holds the WAL."
  default     = 30
}

variable "wal_max_size" {
  type        = string
  description = "WAL size at which the relay pushes back; keep it well under the task storage."
  default     = "10GiB"
}

variable "min_tasks" {
  type        = number
  description = "Fewest running tasks."
  default     = 2
}

variable "max_tasks" {
  type        = number
  description = "Most running tasks."
  default     = 10
}

variable "cpu_target_percent" {
  type        = number
  description = "Average CPU the service scales to keep."
  default     = 60
}

variable "shutdown_delay_seconds" {
  type        = number
  description = "The relay's server.shutdown_delay: seconds /ready answers 503 while listeners still serve (relay default 5)."
  default     = 5
}

variable "graceful_shutdown_timeout_seconds" {
  type        = number
  description = "The relay's server.graceful_shutdown_timeout: seconds to finish requests and flush after the delay (relay default 20)."
  default     = 20
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the relay's own log group."
  default     = 30
}

variable "deletion_protection" {
  type        = bool
  description = "Deletion protection of the load balancer."
  default     = true
}

variable "access_logs_bucket" {
  type        = string
  description = "Bucket for the load balancer's access logs; empty for none."
  default     = ""
}

variable "tags" {
  type        = map(string)
  description = "Tags on every resource that takes them."
  default     = {}
}
