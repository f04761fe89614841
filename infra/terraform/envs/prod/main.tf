# prod: a NAT gateway per AZ, Multi-AZ RDS with deletion protection and 30 days of PITR, three system nodes
# (one per AZ), API and UI spread over the AZs, spot GPU nodes from 0 to var.gpu_max_nodes.

module "stack" {
  source = "../../modules/stack"

  name               = "oncograph-prod"
  availability_zones = var.availability_zones
  vpc_cidr           = "10.41.0.0/16"
  nat_gateway_per_az = true
  bucket_suffix      = var.bucket_suffix

  db = {
    instance_class        = "db.r7g.large"
    allocated_storage_gb  = 200
    max_storage_gb        = 2000
    multi_az              = true
    deletion_protection   = true
    backup_retention_days = 30
  }

  eks = {
    kubernetes_version    = "1.33"
    public_access_cidrs   = var.public_access_cidrs
    admin_principal_arns  = var.admin_principal_arns
    system_instance_types = ["m7i.xlarge"]
    system_min_size       = 3
    system_max_size       = 9
    gpu_instance_types    = ["g5.xlarge", "g6.xlarge"]
    gpu_max_nodes         = var.gpu_max_nodes
    gpu_capacity_type     = "SPOT"
  }

  domain_name             = var.domain_name
  route53_zone_id         = var.route53_zone_id
  certificate_arn         = var.certificate_arn
  alb_deletion_protection = true

  image_tag      = var.image_tag
  min_cell_count = var.min_cell_count
  api_replicas   = { min = 2, max = 10 }
  ui_replicas    = { min = 2, max = 6 }

  prefect_mode                     = var.prefect_mode
  prefect_cloud_api_url            = var.prefect_cloud_api_url
  prefect_cloud_api_key_secret_arn = var.prefect_cloud_api_key_secret_arn
  slide_bucket_arns                = var.slide_bucket_arns
}
