output "app_config" {
  description = "The environment contract: every deployment-provided setting by its variable name, as the containers get it."
  value       = module.compute.app_config
}

output "cluster_name" {
  description = "EKS cluster (aws eks update-kubeconfig --name <this>)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "cluster_ca_certificate" {
  description = "Cluster CA, base64."
  value       = module.eks.cluster_ca_certificate
}

output "ecr_repositories" {
  description = "Where CI pushes the api, ui and worker images."
  value       = module.registry.repository_urls
}

output "ui_url" {
  description = "Public URL of the UI."
  value       = module.edge.ui_url
}

output "api_public_url" {
  description = "Public URL of the API."
  value       = module.edge.api_public_url
}

output "alb_dns_name" {
  description = "DNS name of the ALB."
  value       = module.edge.alb_dns_name
}

output "db_instance_identifier" {
  description = "RDS instance (for PITR and snapshot restores)."
  value       = module.database.instance_identifier
}

output "db_master_secret_arn" {
  description = "ARN (not the value) of the RDS-managed master secret, for break-glass access."
  value       = module.database.master_secret_arn
}

output "prefect_work_pool" {
  description = "Kubernetes work pool that Prefect deployments target."
  value       = module.compute.prefect_work_pool
}

output "nat_public_ips" {
  description = "Egress IPs of the NAT gateways."
  value       = module.network.nat_public_ips
}
