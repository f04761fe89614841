variable "name" {
  description = "Name prefix of the repositories (e.g. oncograph-prod): repositories are <name>/<image>."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "name must be 2-31 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "images" {
  description = "The images the deployment runs."
  type        = list(string)
  default     = ["api", "ui", "worker"]
  validation {
    condition     = alltrue([for i in var.images : can(regex("^[a-z][a-z0-9-]*$", i))])
    error_message = "Image names must be lowercase letters, digits or dashes."
  }
}

variable "untagged_days" {
  description = "Untagged image layers are removed after this many days."
  type        = number
  default     = 14
}

variable "keep_tagged" {
  description = "Tagged images kept per repository (older ones expire; a deployed tag must be among them)."
  type        = number
  default     = 50
}
