# debian12-base: boots osbake's vanilla disk and provisions it with shell + Ansible.
# Parses with Packer 1.6.6 (Debian 12) and 1.14 (osbake adds required_plugins there).
source "qemu" "debian12-base" {
  disk_image       = true
  iso_url          = var.vanilla_disk
  iso_checksum     = "none"
  use_backing_file = false
  skip_resize_disk = true
  disk_size        = var.disk_size
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  disk_discard     = "unmap"
  disk_detect_zeroes = "unmap"
  accelerator      = var.accelerator
  cpus             = var.cpus
  memory           = var.memory
  headless         = true
  output_directory = var.output_directory
  vm_name          = var.vm_name
  boot_wait        = "1s"

  # The build key reaches the VM through fw_cfg; the serial console goes to a file so that a boot
  # that never reaches SSH can be diagnosed.
  qemuargs = [
    ["-fw_cfg", "name=opt/osbake/authorized_keys,file=${var.ssh_public_key_file}"],
    ["-serial", "file:${var.serial_log}"],
  ]

  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  shutdown_command     = "systemctl poweroff"
}

build {
  sources = ["source.qemu.debian12-base"]

  provisioner "shell" {
    inline = [
      "set -eu",
      "echo \"kernel $(uname -r) on $(. /etc/os-release && echo $PRETTY_NAME)\"",
      "systemctl is-system-running --wait || true",
    ]
  }

  provisioner "ansible" {
    playbook_file = "${path.root}/ansible/playbook.yml"
    user          = "root"
    use_proxy     = false
    extra_arguments = [
      "--extra-vars", jsonencode({
        ansible_python_interpreter = "/usr/bin/python3"
        apt_mirror                 = var.apt_mirror
        apt_security_mirror        = var.apt_security_mirror
        suite                      = var.suite
        osbake_image               = var.image_name
        osbake_artifact            = var.artifact
        osbake_release             = var.release
        osbake_git_commit          = var.git_commit
        packages_file              = var.packages_file
        dpkg_status_file           = var.dpkg_status_file
        patch_repo_url             = var.patch_repo_url
      }),
    ]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0"]
  }

  post-processor "manifest" {
    output     = var.packer_manifest
    strip_path = true
  }
}
