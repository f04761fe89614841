variable "name" {
  description = "Name prefix of every resource (e.g. oncograph-prod)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC; split into 3 public, 3 compute and 3 data subnets."
  type        = string
  default     = "10.40.0.0/16"
  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 18
    error_message = "cidr_block must be a valid IPv4 CIDR of /18 or larger (the compute subnets need room for pod IPs)."
  }
}

variable "availability_zones" {
  description = "Availability zones (names, e.g. us-east-1a) to spread the subnets over, one public, compute and data subnet each. Named, not discovered, so a zone AWS adds later never moves a subnet."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "availability_zones must name 2 to 4 distinct zones (RDS Multi-AZ and the ALB need at least 2)."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per AZ (prod: an AZ outage keeps egress) or a single shared one (dev: cheaper)."
  type        = bool
  default     = true
}

variable "flow_log_retention_days" {
  description = "Retention of the VPC flow logs in CloudWatch, days."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_days)
    error_message = "flow_log_retention_days must be a retention period CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "cluster_name" {
  description = "Name of the EKS cluster that will use the compute subnets (tags them for the load balancer controller and autoscaler)."
  type        = string
}

variable "app_ports" {
  description = "Container ports the ALB forwards to (the API and the UI)."
  type        = list(number)
  default     = [8000, 8501]
}
