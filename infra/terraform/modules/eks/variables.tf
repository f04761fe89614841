variable "name" {
  description = "Cluster name (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (a version in EKS standard support)."
  type        = string
  default     = "1.33"
  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "subnet_ids" {
  description = "Private compute subnets (nodes, pods and the control plane's ENIs)."
  type        = list(string)
}

variable "node_security_group_id" {
  description = "Security group of the nodes (app ports from the ALB, node-to-node traffic)."
  type        = string
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint (where terraform and kubectl run). Empty: private endpoint only (run terraform from inside the VPC or over a VPN)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrnetmask(c)) && c != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be IPv4 CIDRs and must not be 0.0.0.0/0."
  }
}

variable "admin_principal_arns" {
  description = "IAM roles/users given cluster-admin through EKS access entries (besides the identity that creates the cluster)."
  type        = list(string)
  default     = []
}

variable "logs_kms_key_arn" {
  description = "KMS key of the control plane's CloudWatch log group."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the control plane logs, days."
  type        = number
  default     = 365
}

variable "system_instance_types" {
  description = "Instance types of the on-demand system node group (API, UI, Prefect, the Ray head, controllers)."
  type        = list(string)
  default     = ["m7i.xlarge"]
}

variable "system_min_size" {
  description = "Minimum system nodes (spread over the AZs)."
  type        = number
  default     = 3
}

variable "system_max_size" {
  description = "Maximum system nodes."
  type        = number
  default     = 6
  validation {
    condition     = var.system_max_size >= 1
    error_message = "system_max_size must be at least 1."
  }
}

variable "gpu_instance_types" {
  description = "GPU instance types of the Ray worker node group, one NVIDIA GPU each (several types widen the spot pools)."
  type        = list(string)
  default     = ["g5.xlarge", "g6.xlarge"]
  validation {
    condition     = alltrue([for t in var.gpu_instance_types : can(regex("^(g4dn|g5|g6|g6e|gr6|p3|p4d|p5)\\.", t))])
    error_message = "gpu_instance_types must be NVIDIA GPU instance families (g4dn, g5, g6, g6e, p3, p4d, p5)."
  }
}

variable "gpus_per_node" {
  description = "NVIDIA GPUs per node of gpu_instance_types (1 for the xlarge sizes); the autoscaler's scale-from-zero template."
  type        = number
  default     = 1
}

variable "gpu_max_nodes" {
  description = "Most GPU nodes the Ray autoscaler may bring up (N in 0..N); 0 disables GPU workers."
  type        = number
  default     = 4
  validation {
    condition     = var.gpu_max_nodes >= 0 && var.gpu_max_nodes <= 100
    error_message = "gpu_max_nodes must be 0 to 100."
  }
}

variable "gpu_capacity_type" {
  description = "SPOT (about a third of the on-demand price; embedding is idempotent per object, so an interruption only repeats in-flight objects) or ON_DEMAND."
  type        = string
  default     = "SPOT"
  validation {
    condition     = contains(["SPOT", "ON_DEMAND"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be SPOT or ON_DEMAND."
  }
}

variable "node_disk_gb" {
  description = "Root volume of each node, GiB (images are large: the worker image carries torch and CUDA)."
  type        = number
  default     = 100
}
