# Variables osbake sets on every build (osbake build debian12-base). To run this template by hand:
#   packer build -var vanilla_disk=PATH/vanilla.qcow2 -var ssh_private_key_file=KEY \
#     -var ssh_public_key_file=KEY.pub images/debian12-base
variable "vanilla_disk" {
  type        = string
  description = "qcow2 vanilla disk made by osbake (mmdebstrap, extlinux, sshd)"
}

variable "ssh_private_key_file" {
  type        = string
  description = "private key of the per-build SSH key pair"
}

variable "ssh_public_key_file" {
  type        = string
  description = "public key handed to the VM through QEMU fw_cfg (opt/osbake/authorized_keys)"
}

variable "output_directory" {
  type    = string
  default = "output-debian12-base"
}

variable "vm_name" {
  type    = string
  default = "debian12-base.qcow2"
}

variable "accelerator" {
  type    = string
  default = "tcg"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 2048
}

variable "disk_size" {
  type    = string
  default = "8G"
}

variable "ssh_timeout" {
  type    = string
  default = "10m"
}

variable "serial_log" {
  type    = string
  default = "serial.log"
}

variable "packages_file" {
  type        = string
  description = "where the installed package list (name, version, arch) is downloaded to"
  default     = "packages.tsv"
}

variable "dpkg_status_file" {
  type        = string
  description = "where the image's /var/lib/dpkg/status is downloaded to (for --create-patches)"
  default     = "dpkg-status"
}

variable "patch_repo_url" {
  type        = string
  description = "apt repository of a release's patch bundle, served by osbake on the host (10.0.2.2)"
  default     = ""
}

variable "packer_manifest" {
  type    = string
  default = "packer-manifest.json"
}

variable "apt_mirror" {
  type    = string
  default = "http://deb.debian.org/debian"
}

variable "apt_security_mirror" {
  type    = string
  default = "http://deb.debian.org/debian-security"
}

variable "suite" {
  type    = string
  default = "bookworm"
}

variable "release" {
  type    = string
  default = "unreleased"
}

variable "git_commit" {
  type    = string
  default = "unknown"
}

variable "image_name" {
  type        = string
  description = "the image's name, set by osbake (a copied image folder needs no edits)"
  default     = "debian12-base"
}

variable "artifact" {
  type        = string
  description = "the build's artifact name (image-release-branch-commit), recorded in /etc/osbake-release"
  default     = "unknown"
}
