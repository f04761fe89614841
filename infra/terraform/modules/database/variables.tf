variable "name" {
  description = "Name prefix of every resource (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "subnet_ids" {
  description = "Private data subnets (one per AZ) for the DB subnet group."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "RDS needs subnets in at least 2 AZs."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instance (5432 from the compute tier only)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version: a major (16: RDS picks the current minor, and auto minor upgrades keep it patched) or major.minor. pgvector needs 16.1 or later."
  type        = string
  default     = "16"
  validation {
    condition     = can(regex("^16(\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 16 (\"16\" or \"16.x\"): the parameter group family is postgres16."
  }
}

variable "instance_class" {
  description = "RDS instance class (Graviton: db.t4g.medium for dev, db.r7g.large or bigger for prod)."
  type        = string
  default     = "db.r7g.large"
  validation {
    condition     = can(regex("^db\\.", var.instance_class))
    error_message = "instance_class must be an RDS class such as db.r7g.large."
  }
}

variable "allocated_storage_gb" {
  description = "Initial gp3 storage, GiB."
  type        = number
  default     = 100
  validation {
    condition     = var.allocated_storage_gb >= 20
    error_message = "allocated_storage_gb must be at least 20."
  }
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling, GiB (must exceed allocated_storage_gb)."
  type        = number
  default     = 1000
}

variable "multi_az" {
  description = "Synchronous standby in a second AZ with automatic failover (prod: true)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (prod: true)."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups kept, which is also the point-in-time-restore window."
  type        = number
  default     = 30
  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be 1 to 35 (0 would turn backups and PITR off)."
  }
}

variable "database_name" {
  description = "The application database RDS creates."
  type        = string
  default     = "oncograph"
}

variable "app_username" {
  description = "The application's login role; it authenticates with IAM tokens (rds_iam), never a password."
  type        = string
  default     = "oncograph"
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL logs in CloudWatch, days."
  type        = number
  default     = 365
}

variable "logs_kms_key_arn" {
  description = "KMS key for the CloudWatch log groups of the exported logs."
  type        = string
}

variable "slow_query_ms" {
  description = "log_min_duration_statement: statements slower than this are logged, ms."
  type        = number
  default     = 1000
}
