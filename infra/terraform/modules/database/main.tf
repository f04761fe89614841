# RDS PostgreSQL 16 with pgvector (CREATE EXTENSION vector: the first migration runs it with IF NOT EXISTS; the
# bootstrap job in the compute module creates it as the master user first, because only rds_superuser may).
#
# Credentials: the master user's password is generated and rotated by RDS in Secrets Manager
# (manage_master_user_password); only the one-shot bootstrap job reads it. The application role authenticates
# with IAM: a pod's role may rds-db:connect as that one user, and oncograph signs a 15-minute token per new
# connection (ONCOGRAPH_DATABASE_IAM_AUTH=true). No password of the application exists anywhere.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_region" "current" {}

resource "aws_kms_key" "db" {
  description             = "${var.name}: RDS storage, snapshots, Performance Insights and the master secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.db_key.json
}

resource "aws_kms_alias" "db" {
  name          = "alias/${var.name}-db"
  target_key_id = aws_kms_key.db.key_id
}

data "aws_iam_policy_document" "db_key" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means this key only; the account root keeps administration (AWS's default key policy); RDS and Secrets Manager use it through grants of IAM principals
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means this key only
  #checkov:skip=CKV_AWS_356:A KMS key policy's Resource "*" means this key only (key policies cannot name other resources)
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "${var.name}: private data subnets"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name        = "${var.name}-pg16"
  family      = "postgres16"
  description = "${var.name}: TLS required, slow statements and DDL logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "ssl_min_protocol_version"
    value = "TLSv1.2"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = tostring(var.slow_query_ms)
  }
  parameter {
    name  = "log_statement"
    value = "ddl"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
  parameter {
    name  = "log_disconnections"
    value = "1"
  }
  parameter {
    name  = "log_lock_waits"
    value = "1"
  }
  # pgvector's HNSW index builds want memory; the cohort index loads through large sorts
  parameter {
    name  = "maintenance_work_mem"
    value = "1048576"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_cloudwatch_log_group" "postgresql" {
  for_each          = toset(["postgresql", "upgrade"])
  name              = "/aws/rds/instance/${var.name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn
}

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class
  db_name        = var.database_name
  port           = 5432

  username                            = "oncograph_admin"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.db.arn
  iam_database_authentication_enabled = true

  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.db.arn

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = var.security_group_ids
  publicly_accessible    = false
  multi_az               = var.multi_az
  ca_cert_identifier     = "rds-ca-rsa2048-g1"
  parameter_group_name   = aws_db_parameter_group.this.name

  #checkov:skip=CKV_AWS_157:Multi-AZ is per environment: envs/prod sets multi_az = true (asserted by tests/deploy/test_terraform.py); dev runs single-AZ to halve the instance cost
  #checkov:skip=CKV_AWS_293:Deletion protection is per environment: envs/prod sets it (asserted by tests/deploy/test_terraform.py); dev can be torn down
  deletion_protection = var.deletion_protection

  backup_retention_period   = var.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  auto_minor_version_upgrade  = true
  allow_major_version_upgrade = false
  apply_immediately           = false

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.db.arn
  performance_insights_retention_period = 7
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  depends_on = [aws_cloudwatch_log_group.postgresql]
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
