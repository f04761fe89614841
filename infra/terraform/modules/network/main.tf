# A VPC over local.az_count AZs: public subnets hold only the ALB and the NAT gateways, compute subnets the EKS
# nodes and pods (the VPC CNI gives pods VPC addresses), data subnets only RDS. Nothing in a private subnet has
# a public address; the compute tier reaches AWS APIs through VPC endpoints and the internet (GDC, PDC) through NAT.

data "aws_availability_zones" "available" {
  state = "available"
  filter {
    name   = "zone-name"
    values = var.availability_zones
  }
  lifecycle {
    postcondition {
      condition     = length(self.names) == length(var.availability_zones)
      error_message = "Some of var.availability_zones are not available zones of this region."
    }
  }
}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  az_count = length(var.availability_zones)
  azs      = var.availability_zones
  # /16 -> public /24s (x.0-3), data /24s (x.10-13), compute /20s (x.64, x.80, ...): pods need the room.
  public_cidrs  = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 8, i)]
  data_cidrs    = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 8, 10 + i)]
  compute_cidrs = [for i in range(local.az_count) : cidrsubnet(var.cidr_block, 4, 4 + i)]
  nat_count     = var.nat_gateway_per_az ? local.az_count : 1
  # the interface endpoints the compute tier calls: image pulls, secrets, logs, Pod Identity/STS, the EC2 and
  # autoscaling APIs the cluster autoscaler calls, and EKS (Pod Identity agent, node join)
  interface_endpoints = ["ecr.api", "ecr.dkr", "secretsmanager", "logs", "sts", "ec2", "autoscaling", "eks", "eks-auth", "elasticloadbalancing"]
}

resource "aws_vpc" "this" {
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

# The default security group allows all traffic between its members: strip it so nothing can use it by accident.
resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-default-unused" }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count             = local.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.public_cidrs[count.index]
  availability_zone = local.azs[count.index]
  # no public IPs on launch: only the ALB and the NAT gateways (Elastic IPs) live here
  map_public_ip_on_launch = false
  tags = {
    Name                     = "${var.name}-public-${local.azs[count.index]}"
    Tier                     = "public"
    "kubernetes.io/role/elb" = "1"
  }
}

resource "aws_subnet" "compute" {
  count             = local.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.compute_cidrs[count.index]
  availability_zone = local.azs[count.index]
  tags = {
    Name                                        = "${var.name}-compute-${local.azs[count.index]}"
    Tier                                        = "compute"
    "kubernetes.io/role/internal-elb"           = "1"
    "kubernetes.io/cluster/${var.cluster_name}" = "shared"
  }
}

resource "aws_subnet" "data" {
  count             = local.az_count
  vpc_id            = aws_vpc.this.id
  cidr_block        = local.data_cidrs[count.index]
  availability_zone = local.azs[count.index]
  tags = {
    Name = "${var.name}-data-${local.azs[count.index]}"
    Tier = "data"
  }
}

resource "aws_eip" "nat" {
  count  = local.nat_count
  domain = "vpc"
  tags   = { Name = "${var.name}-nat-${count.index}" }
}

resource "aws_nat_gateway" "this" {
  count         = local.nat_count
  allocation_id = aws_eip.nat[count.index].id
  subnet_id     = aws_subnet.public[count.index].id
  tags          = { Name = "${var.name}-nat-${local.azs[count.index]}" }
  depends_on    = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table_association" "public" {
  count          = local.az_count
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

# one route table per AZ for compute: each sends egress through its AZ's NAT (or the single one in dev)
resource "aws_route_table" "compute" {
  count  = local.az_count
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-compute-${local.azs[count.index]}" }
}

resource "aws_route" "compute_nat" {
  count                  = local.az_count
  route_table_id         = aws_route_table.compute[count.index].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[var.nat_gateway_per_az ? count.index : 0].id
}

resource "aws_route_table_association" "compute" {
  count          = local.az_count
  subnet_id      = aws_subnet.compute[count.index].id
  route_table_id = aws_route_table.compute[count.index].id
}

# data subnets have no route out of the VPC at all
resource "aws_route_table" "data" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-data" }
}

resource "aws_route_table_association" "data" {
  count          = local.az_count
  subnet_id      = aws_subnet.data[count.index].id
  route_table_id = aws_route_table.data.id
}

# ---- security groups: each tier opens only what the next one needs ----

resource "aws_security_group" "alb" {
  #checkov:skip=CKV2_AWS_5:Attached to the ALB (modules/edge) through this module's outputs; checkov's graph does not follow module outputs
  name        = "${var.name}-alb"
  description = "Internet-facing ALB: HTTPS (and HTTP, redirected to HTTPS) in; app ports out to the nodes."
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-alb" }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from the internet"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 answers only with a 301 to HTTPS (the ALB's HTTP listener has no forward action), so typed http:// URLs still work
  security_group_id = aws_security_group.alb.id
  description       = "HTTP from the internet, answered only with a redirect to HTTPS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_apps" {
  for_each                     = toset([for p in var.app_ports : tostring(p)])
  security_group_id            = aws_security_group.alb.id
  description                  = "To the app pods on ${each.value}"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

resource "aws_security_group" "nodes" {
  #checkov:skip=CKV2_AWS_5:Attached to the EKS launch templates (modules/eks) through this module's outputs; checkov's graph does not follow module outputs
  name        = "${var.name}-nodes"
  description = "EKS nodes and pods: app ports from the ALB, all traffic between nodes (pods, Ray), egress via NAT and endpoints."
  vpc_id      = aws_vpc.this.id
  tags = {
    Name                                        = "${var.name}-nodes"
    "kubernetes.io/cluster/${var.cluster_name}" = "owned"
  }
}

resource "aws_vpc_security_group_ingress_rule" "nodes_from_alb" {
  for_each                     = toset([for p in var.app_ports : tostring(p)])
  security_group_id            = aws_security_group.nodes.id
  description                  = "App port ${each.value} from the ALB"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = tonumber(each.value)
  to_port                      = tonumber(each.value)
}

# pod-to-pod and Ray (GCS 6379, client 10001, object transfer on dynamic ports) cross nodes: allow within the group
resource "aws_vpc_security_group_ingress_rule" "nodes_self" {
  security_group_id            = aws_security_group.nodes.id
  description                  = "Node and pod traffic between nodes (CoreDNS, Ray, kubelet)"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "-1"
}

resource "aws_vpc_security_group_egress_rule" "nodes_all" {
  security_group_id = aws_security_group.nodes.id
  description       = "Egress: GDC/PDC over NAT, AWS APIs over endpoints, other nodes, RDS"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "-1"
}

resource "aws_security_group" "database" {
  #checkov:skip=CKV2_AWS_5:Attached to the RDS instance (modules/database) through this module's outputs; checkov's graph does not follow module outputs
  name        = "${var.name}-database"
  description = "RDS PostgreSQL: 5432 from the EKS nodes only; no egress."
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-database" }
}

resource "aws_vpc_security_group_ingress_rule" "database_from_nodes" {
  security_group_id            = aws_security_group.database.id
  description                  = "PostgreSQL from the EKS nodes and pods"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_security_group" "endpoints" {
  name        = "${var.name}-endpoints"
  description = "Interface VPC endpoints: HTTPS from the EKS nodes only."
  vpc_id      = aws_vpc.this.id
  tags        = { Name = "${var.name}-endpoints" }
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_nodes" {
  security_group_id            = aws_security_group.endpoints.id
  description                  = "HTTPS to AWS APIs from the EKS nodes and pods"
  referenced_security_group_id = aws_security_group.nodes.id
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
}

# ---- VPC endpoints ----

resource "aws_vpc_endpoint" "s3" {
  vpc_id            = aws_vpc.this.id
  service_name      = "com.amazonaws.${data.aws_region.current.name}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = aws_route_table.compute[*].id
  tags              = { Name = "${var.name}-s3" }
}

resource "aws_vpc_endpoint" "interface" {
  for_each            = toset(local.interface_endpoints)
  vpc_id              = aws_vpc.this.id
  service_name        = "com.amazonaws.${data.aws_region.current.name}.${each.value}"
  vpc_endpoint_type   = "Interface"
  private_dns_enabled = true
  subnet_ids          = aws_subnet.compute[*].id
  security_group_ids  = [aws_security_group.endpoints.id]
  tags                = { Name = "${var.name}-${each.value}" }
}

# ---- flow logs: every accepted and rejected flow, to CloudWatch, encrypted with our key ----

resource "aws_kms_key" "logs" {
  description             = "${var.name}: VPC flow logs and other CloudWatch log groups"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.logs_key.json
}

resource "aws_kms_alias" "logs" {
  name          = "alias/${var.name}-logs"
  target_key_id = aws_kms_key.logs.key_id
}

data "aws_iam_policy_document" "logs_key" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" means this key only; the account root keeps administration (AWS's default key policy)
  #checkov:skip=CKV_AWS_111:A KMS key policy's Resource "*" means this key only; writes are limited to the account root and CloudWatch Logs of this account
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
  statement {
    sid       = "CloudWatchLogsUse"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.name}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${data.aws_partition.current.partition}:logs:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:*"]
    }
  }
}

data "aws_partition" "current" {}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/aws/vpc/${var.name}/flow-logs"
  retention_in_days = var.flow_log_retention_days
  kms_key_id        = aws_kms_key.logs.arn
}

resource "aws_flow_log" "this" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow.arn
  iam_role_arn             = aws_iam_role.flow.arn
  max_aggregation_interval = 60
}

data "aws_iam_policy_document" "flow_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_iam_role" "flow" {
  name               = "${var.name}-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_assume.json
}

data "aws_iam_policy_document" "flow" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["${aws_cloudwatch_log_group.flow.arn}:*"]
  }
}

resource "aws_iam_role_policy" "flow" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow.id
  policy = data.aws_iam_policy_document.flow.json
}
