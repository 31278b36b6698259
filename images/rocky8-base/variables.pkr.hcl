# Variables osbake sets on every build of rocky8-base (osbake build rocky8-base --builder qemu|libvirt).
# Shared by builders/qemu.pkr.hcl and builders/libvirt.pkr.hcl; osbake stages one of them next to
# this file. To run the qemu variant by hand (Packer 1.6.6 or later):
#   mkdir /tmp/r && cp -r images/rocky8-base/* /tmp/r && cp images/rocky8-base/builders/qemu.pkr.hcl /tmp/r/ \
#     && rm -r /tmp/r/builders && cp KEY.pub /tmp/r/http/osbake_authorized_keys \
#     && packer build -var ssh_private_key_file=KEY /tmp/r

# ---- the Rocky release and the mirrors the build uses (empty: the repo files' own mirrorlists) ----
variable "rocky_version" {
  type        = string
  description = "Rocky 8 point release: ISO name and download path"
  default     = "8.10"
}

variable "iso_url" {
  type        = string
  description = "installation ISO; empty: the official minimal ISO of rocky_version"
  default     = ""
}

variable "iso_checksum" {
  type        = string
  description = "ISO checksum (sha256:... or file:URL); empty: the release's published CHECKSUM file"
  default     = ""
}

variable "rocky_baseos_mirror" {
  type    = string
  default = ""
}

variable "rocky_appstream_mirror" {
  type    = string
  default = ""
}

variable "rocky_powertools_mirror" {
  type    = string
  default = ""
}

variable "rocky_epel_mirror" {
  type    = string
  default = ""
}

# ---- every build ----
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
  default = "16G"
}

variable "ssh_timeout" {
  type    = string
  default = "60m"
}

variable "ssh_private_key_file" {
  type        = string
  description = "qemu: the per-build key (its .pub is served to the kickstart); libvirt: the key the vanilla volume accepts"
}

variable "packages_file" {
  type        = string
  description = "where the installed package list (name, version, arch) is downloaded to"
  default     = "packages.tsv"
}

variable "rpm_nevra_file" {
  type        = string
  description = "where `rpm -qa` (NEVRA) is downloaded to (input of --create-patches)"
  default     = "rpm-nevra.txt"
}

variable "patch_repo_url" {
  type        = string
  description = "rpm repository of a release's patch bundle, served by osbake (empty: none)"
  default     = ""
}

variable "patch_repo_dir" {
  type        = string
  description = "libvirt builds: the patch bundle repository on the build host, copied into the VM (empty: none)"
  default     = ""
}

variable "packer_manifest" {
  type    = string
  default = "packer-manifest.json"
}

variable "release" {
  type    = string
  default = "unreleased"
}

variable "git_commit" {
  type    = string
  default = "unknown"
}

# ---- qemu builder only ----
variable "ssh_public_key_file" {
  type        = string
  description = "public half of the build key (osbake copies it to http/osbake_authorized_keys)"
  default     = ""
}

variable "output_directory" {
  type    = string
  default = "output-rocky8-base"
}

variable "vm_name" {
  type    = string
  default = "rocky8-base.qcow2"
}

variable "accelerator" {
  type    = string
  default = "tcg"
}

variable "serial_log" {
  type    = string
  default = "serial.log"
}

# ---- libvirt builder only ----
variable "libvirt_uri" {
  type        = string
  description = "qemu+ssh://root@HOST/system?keyfile=KEY&known_hosts=FILE (osbake adds the parameters)"
  default     = "qemu:///system"
}

variable "libvirt_pool" {
  type    = string
  default = "default"
}

variable "libvirt_vanilla_volume" {
  type        = string
  description = "the pre-made vanilla volume that is cloned for the build"
  default     = "rocky8-vanilla.qcow2"
}

variable "libvirt_network" {
  type    = string
  default = "default"
}

variable "volume_name" {
  type        = string
  description = "name of the artifact volume left in the pool"
  default     = "rocky8-base.qcow2"
}

variable "domain_name" {
  type    = string
  default = "osbake-rocky8-base"
}

variable "ssh_bastion_host" {
  type    = string
  default = ""
}

variable "ssh_bastion_port" {
  type    = number
  default = 22
}

variable "ssh_bastion_username" {
  type    = string
  default = "root"
}

variable "ssh_bastion_private_key_file" {
  type    = string
  default = ""
}

variable "ansible_ssh_extra_args" {
  type        = string
  description = "extra ssh options for Ansible (a ProxyCommand through the bastion)"
  default     = ""
}

variable "image_name" {
  type        = string
  description = "the image's name, set by osbake (a copied image folder needs no edits)"
  default     = "rocky8-base"
}

variable "artifact" {
  type        = string
  description = "the build's artifact name (image-release-branch-commit), recorded in /etc/osbake-release"
  default     = "unknown"
}
