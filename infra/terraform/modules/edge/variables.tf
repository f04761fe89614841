variable "name" {
  description = "Name prefix (e.g. oncograph-prod); ALB and target group names are derived from it."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be 2-21 lowercase letters, digits or dashes (ALB target group names are at most 32 characters)."
  }
}

variable "vpc_id" {
  description = "VPC of the ALB and its targets."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets (one per AZ) of the ALB."
  type        = list(string)
}

variable "security_group_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "domain_name" {
  description = "Host name of the UI (e.g. oncograph.example.org); the API is served at api.<domain_name>."
  type        = string
  validation {
    condition     = can(regex("^([a-z0-9-]+\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "domain_name must be a DNS name such as oncograph.example.org."
  }
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name: Terraform validates the certificate and creates the alias records there. Empty: bring certificate_arn and create the DNS records yourself."
  type        = string
  default     = ""
}

variable "certificate_arn" {
  description = "An existing ACM certificate covering domain_name and api.<domain_name>. Empty: Terraform requests one (needs route53_zone_id)."
  type        = string
  default     = ""
  validation {
    condition     = var.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:", var.certificate_arn))
    error_message = "certificate_arn must be empty or an ACM certificate ARN."
  }
}

variable "logs_bucket" {
  description = "Bucket for the ALB access logs (prefix alb/)."
  type        = string
}

variable "logs_kms_key_arn" {
  description = "KMS key of the WAF log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the WAF logs, days."
  type        = number
  default     = 365
}

variable "waf_rate_limit" {
  description = "Requests per 5 minutes from one IP before WAF blocks it."
  type        = number
  default     = 2000
  validation {
    condition     = var.waf_rate_limit >= 100
    error_message = "waf_rate_limit must be at least 100 (WAF's minimum)."
  }
}

variable "deletion_protection" {
  description = "Refuse to delete the ALB (prod: true)."
  type        = bool
  default     = true
}

variable "api_port" {
  description = "Container port of the API."
  type        = number
  default     = 8000
}

variable "ui_port" {
  description = "Container port of the UI (Streamlit)."
  type        = number
  default     = 8501
}
