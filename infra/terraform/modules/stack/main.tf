# One oncograph environment: network -> database, storage, registry, cluster, edge -> iam -> compute.

module "network" {
  source                  = "../network"
  name                    = var.name
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  nat_gateway_per_az      = var.nat_gateway_per_az
  cluster_name            = var.name
  flow_log_retention_days = var.log_retention_days
}

module "database" {
  source                   = "../database"
  name                     = var.name
  subnet_ids               = module.network.data_subnet_ids
  security_group_ids       = [module.network.database_security_group_id]
  instance_class           = var.db.instance_class
  allocated_storage_gb     = var.db.allocated_storage_gb
  max_allocated_storage_gb = var.db.max_storage_gb
  multi_az                 = var.db.multi_az
  deletion_protection      = var.db.deletion_protection
  backup_retention_days    = var.db.backup_retention_days
  logs_kms_key_arn         = module.network.logs_kms_key_arn
  log_retention_days       = var.log_retention_days
}

module "storage" {
  source          = "../storage"
  name            = var.name
  bucket_suffix   = var.bucket_suffix
  force_destroy   = var.force_destroy_buckets
  access_log_days = var.log_retention_days
}

module "registry" {
  source = "../registry"
  name   = var.name
}

module "eks" {
  source                 = "../eks"
  name                   = var.name
  kubernetes_version     = var.eks.kubernetes_version
  subnet_ids             = module.network.compute_subnet_ids
  node_security_group_id = module.network.node_security_group_id
  public_access_cidrs    = var.eks.public_access_cidrs
  admin_principal_arns   = var.eks.admin_principal_arns
  logs_kms_key_arn       = module.network.logs_kms_key_arn
  log_retention_days     = var.log_retention_days
  system_instance_types  = var.eks.system_instance_types
  system_min_size        = var.eks.system_min_size
  system_max_size        = var.eks.system_max_size
  gpu_instance_types     = var.eks.gpu_instance_types
  gpu_max_nodes          = var.eks.gpu_max_nodes
  gpu_capacity_type      = var.eks.gpu_capacity_type
}

module "edge" {
  source              = "../edge"
  name                = var.name
  vpc_id              = module.network.vpc_id
  public_subnet_ids   = module.network.public_subnet_ids
  security_group_id   = module.network.alb_security_group_id
  domain_name         = var.domain_name
  route53_zone_id     = var.route53_zone_id
  certificate_arn     = var.certificate_arn
  logs_bucket         = module.storage.logs_bucket
  logs_kms_key_arn    = module.network.logs_kms_key_arn
  log_retention_days  = var.log_retention_days
  deletion_protection = var.alb_deletion_protection
}

module "iam" {
  source               = "../iam"
  name                 = var.name
  cluster_name         = module.eks.cluster_name
  db_connect_arn       = module.database.connect_arn
  db_master_secret_arn = module.database.master_secret_arn
  db_kms_key_arn       = module.database.kms_key_arn
  exports_bucket_arn   = module.storage.exports_bucket_arn
  features_bucket_arn  = module.storage.features_bucket_arn
  s3_kms_key_arn       = module.storage.kms_key_arn
  slide_bucket_arns    = var.slide_bucket_arns
  target_group_arns    = values(module.edge.target_group_arns)
}

module "compute" {
  source                           = "../compute"
  name                             = var.name
  cluster_name                     = module.eks.cluster_name
  vpc_id                           = module.network.vpc_id
  pod_identity_association_ids     = module.iam.association_ids
  image_repositories               = module.registry.repository_urls
  image_tag                        = var.image_tag
  database_url                     = module.database.database_url
  database_address                 = module.database.address
  database_port                    = module.database.port
  database_name                    = module.database.database_name
  database_app_user                = module.database.app_username
  database_master_secret_arn       = module.database.master_secret_arn
  export_root                      = module.storage.export_root
  features_root                    = module.storage.features_root
  min_cell_count                   = var.min_cell_count
  target_group_arns                = module.edge.target_group_arns
  api_replicas                     = var.api_replicas
  ui_replicas                      = var.ui_replicas
  prefect_mode                     = var.prefect_mode
  prefect_cloud_api_url            = var.prefect_cloud_api_url
  prefect_cloud_api_key_secret_arn = var.prefect_cloud_api_key_secret_arn
  gpu_max_nodes                    = module.eks.gpu_max_nodes
  gpus_per_node                    = module.eks.gpus_per_node
  # the controllers and workloads need the add-ons (CNI, DNS, Pod Identity agent) and nodes
  depends_on = [module.eks]
}
