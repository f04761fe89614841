output "cluster_name" {
  description = "EKS cluster name."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Cluster CA (base64), for the kubernetes and helm providers."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "cluster_arn" {
  description = "EKS cluster ARN."
  value       = aws_eks_cluster.this.arn
}

output "node_group_arns" {
  description = "ARNs of the system and GPU node groups (the cluster autoscaler's policy scopes to their ASGs by tag)."
  value       = { system = aws_eks_node_group.system.arn, gpu = aws_eks_node_group.gpu.arn }
}

output "gpu_max_nodes" {
  description = "Most GPU nodes (the Ray worker group's maxReplicas is this times gpus_per_node)."
  value       = var.gpu_max_nodes
}

output "gpus_per_node" {
  description = "GPUs per GPU node."
  value       = var.gpus_per_node
}

output "addons" {
  description = "Installed EKS add-ons (the compute module waits for them)."
  value       = [for a in aws_eks_addon.this : a.id]
}
