# The Ray cluster (KubeRay): a head on a system node that runs no tasks (num-cpus 0) but the GCS, the client
# server (ray://...:10001, ONCOGRAPH_RAY_ADDRESS) and the autoscaler; GPU workers 0..var.gpu_max_nodes on the
# tainted GPU node group; CPU workers 0..var.ray_cpu_max_workers on system nodes. The embed flow asks for
# encoder actors with num_gpus=1 (ADR 0008): the Ray autoscaler creates GPU worker pods for them, the pending
# pods make the cluster autoscaler add GPU nodes, and both scale back to zero when idle.
#
# The RayCluster, the ALB TargetGroupBindings and the NetworkPolicy are custom or plain resources applied through
# the local pass-through chart charts/manifests, so `terraform plan` never needs their CRDs to exist yet.

locals {
  ray_pod_security = {
    runAsNonRoot   = true
    runAsUser      = local.uid
    runAsGroup     = local.uid
    fsGroup        = local.uid
    seccompProfile = { type = "RuntimeDefault" }
  }
  ray_container_security = {
    allowPrivilegeEscalation = false
    readOnlyRootFilesystem   = true
    runAsNonRoot             = true
    runAsUser                = local.uid
    capabilities             = { drop = ["ALL"] }
  }
  ray_env = [for k, v in local.env["worker"] : { name = k, value = v }]
  # the object store lives in /dev/shm; /tmp/ray holds sessions and spilled objects
  ray_volumes = [
    { name = "shm", emptyDir = { medium = "Memory", sizeLimit = "4Gi" } },
    { name = "tmp", emptyDir = { sizeLimit = "50Gi" } },
    { name = "home", emptyDir = { sizeLimit = "10Gi" } },
  ]
  ray_mounts = [
    { name = "shm", mountPath = "/dev/shm" },
    { name = "tmp", mountPath = "/tmp" },
    { name = "home", mountPath = local.home },
  ]

  ray_worker_group = {
    gpu = {
      replicas     = 0
      minReplicas  = 0
      maxReplicas  = var.gpu_max_nodes
      nodeSelector = { "oncograph.io/pool" = "gpu" }
      tolerations  = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
      resources = {
        requests = { cpu = var.ray_gpu_worker_resources.cpu, memory = var.ray_gpu_worker_resources.memory, "nvidia.com/gpu" = tostring(var.gpus_per_node) }
        limits   = { cpu = var.ray_gpu_worker_resources.cpu, memory = var.ray_gpu_worker_resources.memory, "nvidia.com/gpu" = tostring(var.gpus_per_node) }
      }
    }
    cpu = {
      replicas     = 0
      minReplicas  = 0
      maxReplicas  = var.ray_cpu_max_workers
      nodeSelector = { "oncograph.io/pool" = "system" }
      tolerations  = []
      resources = {
        requests = { cpu = "2", memory = "8Gi" }
        limits   = { cpu = "2", memory = "8Gi" }
      }
    }
  }

  ray_cluster = {
    apiVersion = "ray.io/v1"
    kind       = "RayCluster"
    metadata   = { name = local.ray_cluster_name, namespace = local.ns, labels = local.labels }
    spec = {
      rayVersion              = var.ray_version
      enableInTreeAutoscaling = true
      autoscalerOptions = {
        upscalingMode      = "Default"
        idleTimeoutSeconds = 300
        imagePullPolicy    = "Always"
        resources = {
          requests = { cpu = "200m", memory = "512Mi" }
          limits   = { cpu = "500m", memory = "1Gi" }
        }
        securityContext = local.ray_container_security
      }
      headGroupSpec = {
        serviceType = "ClusterIP"
        rayStartParams = {
          "num-cpus"       = "0"
          "dashboard-host" = "0.0.0.0"
        }
        template = {
          metadata = { labels = merge(local.labels, { "oncograph.io/ray" = "head" }) }
          spec = {
            serviceAccountName = "worker"
            nodeSelector       = { "oncograph.io/pool" = "system" }
            securityContext    = local.ray_pod_security
            volumes            = local.ray_volumes
            containers = [{
              name            = "ray-head"
              image           = local.images["worker"]
              imagePullPolicy = "Always"
              env             = local.ray_env
              ports = [
                { name = "gcs", containerPort = 6379 },
                { name = "dashboard", containerPort = 8265 },
                { name = "client", containerPort = 10001 },
              ]
              resources = {
                requests = { cpu = "1", memory = "4Gi" }
                limits   = { cpu = "2", memory = "6Gi" }
              }
              securityContext = local.ray_container_security
              volumeMounts    = local.ray_mounts
            }]
          }
        }
      }
      workerGroupSpecs = [for group, g in local.ray_worker_group : {
        groupName      = group
        replicas       = g.replicas
        minReplicas    = g.minReplicas
        maxReplicas    = g.maxReplicas
        rayStartParams = {}
        template = {
          metadata = { labels = merge(local.labels, { "oncograph.io/ray" = "worker-${group}" }) }
          spec = {
            serviceAccountName = "worker"
            nodeSelector       = g.nodeSelector
            tolerations        = g.tolerations
            securityContext    = local.ray_pod_security
            volumes            = local.ray_volumes
            containers = [{
              name            = "ray-worker"
              image           = local.images["worker"]
              imagePullPolicy = "Always"
              env             = local.ray_env
              resources       = g.resources
              securityContext = local.ray_container_security
              volumeMounts    = local.ray_mounts
            }]
          }
        }
      }]
    }
  }

  # Ray has no authentication of its own: only Ray pods, flow runs and the export worker may reach it
  ray_network_policy = {
    apiVersion = "networking.k8s.io/v1"
    kind       = "NetworkPolicy"
    metadata   = { name = "ray-clients-only", namespace = local.ns }
    spec = {
      podSelector = { matchExpressions = [{ key = "oncograph.io/ray", operator = "Exists" }] }
      policyTypes = ["Ingress"]
      ingress = [{
        from = [
          { podSelector = { matchExpressions = [{ key = "oncograph.io/ray", operator = "Exists" }] } },
          { podSelector = { matchLabels = { "oncograph.io/ray-client" = "true" } } },
        ]
      }]
    }
  }

  target_group_bindings = [for app, port in { api = 8000, ui = 8501 } : {
    apiVersion = "elbv2.k8s.aws/v1beta1"
    kind       = "TargetGroupBinding"
    metadata   = { name = app, namespace = local.ns }
    spec = {
      serviceRef     = { name = app, port = port }
      targetGroupARN = var.target_group_arns[app]
      targetType     = "ip"
    }
  }]
}

resource "helm_release" "ray_cluster" {
  name      = "oncograph-ray"
  namespace = kubernetes_namespace_v1.this.metadata[0].name
  chart     = "${path.module}/charts/manifests"
  values    = [yamlencode({ manifests = [local.ray_cluster, local.ray_network_policy] })]
  depends_on = [
    helm_release.kuberay_operator,
    helm_release.nvidia_device_plugin,
    kubernetes_service_account_v1.this,
    terraform_data.identities_bound,
  ]
}

resource "helm_release" "target_group_bindings" {
  name       = "oncograph-alb-targets"
  namespace  = kubernetes_namespace_v1.this.metadata[0].name
  chart      = "${path.module}/charts/manifests"
  values     = [yamlencode({ manifests = local.target_group_bindings })]
  depends_on = [helm_release.aws_load_balancer_controller, kubernetes_service_v1.app]
}
