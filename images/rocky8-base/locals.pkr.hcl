# Values both builders share. Parses with Packer 1.6.6 and 1.14.
locals {
  iso_base     = "https://download.rockylinux.org/pub/rocky/${var.rocky_version}/isos/x86_64"
  iso_url      = var.iso_url != "" ? var.iso_url : "${local.iso_base}/Rocky-${var.rocky_version}-x86_64-minimal.iso"
  iso_checksum = var.iso_checksum != "" ? var.iso_checksum : "file:${local.iso_base}/CHECKSUM"

  # Everything the Ansible roles are told (ansible/roles/*/defaults document each key).
  ansible_extra_vars = jsonencode({
    ansible_python_interpreter = "/usr/libexec/platform-python"
    rocky_version              = var.rocky_version
    rocky_mirrors = {
      baseos     = var.rocky_baseos_mirror
      appstream  = var.rocky_appstream_mirror
      powertools = var.rocky_powertools_mirror
      epel       = var.rocky_epel_mirror
    }
    osbake_image      = var.image_name
    osbake_artifact   = var.artifact
    osbake_release    = var.release
    osbake_git_commit = var.git_commit
    packages_file     = var.packages_file
    rpm_nevra_file    = var.rpm_nevra_file
    patch_repo_url    = var.patch_repo_url
    patch_repo_dir    = var.patch_repo_dir
  })
}
