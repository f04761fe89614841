output "app_config" {
  description = "ONCOGRAPH_* / PREFECT_API_URL the containers get (the environment contract; no secrets)."
  value       = module.stack.app_config
}

output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name <this>)."
  value       = module.stack.cluster_name
}

output "ecr_repositories" {
  description = "Where CI pushes the api, ui and worker images."
  value       = module.stack.ecr_repositories
}

output "ui_url" {
  description = "Public URL of the UI."
  value       = module.stack.ui_url
}

output "api_public_url" {
  description = "Public URL of the API."
  value       = module.stack.api_public_url
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.stack.alb_dns_name
}

output "db_instance_identifier" {
  description = "RDS instance identifier (for restores)."
  value       = module.stack.db_instance_identifier
}

output "db_master_secret_arn" {
  description = "ARN of the RDS-managed master secret (break-glass only)."
  value       = module.stack.db_master_secret_arn
}

output "prefect_work_pool" {
  description = "Kubernetes work pool Prefect deployments target."
  value       = module.stack.prefect_work_pool
}

output "nat_public_ips" {
  description = "Egress IPs of the NAT gateways."
  value       = module.stack.nat_public_ips
}
