# rocky8-base, qemu builder: installs Rocky 8 from the official ISO with http/ks.cfg served by
# Packer's HTTP server, then provisions over SSH. osbake stages this file next to the shared ones
# for --builder qemu. Parses with Packer 1.6.6 (Debian 12) and 1.14 (osbake adds required_plugins).
source "qemu" "rocky8-base" {
  iso_url          = local.iso_url
  iso_checksum     = local.iso_checksum
  http_directory   = "${path.root}/http"
  disk_size        = var.disk_size
  format           = "qcow2"
  disk_interface   = "virtio"
  net_device       = "virtio-net"
  disk_discard     = "unmap"
  accelerator      = var.accelerator
  cpus             = var.cpus
  memory           = var.memory
  headless         = true
  output_directory = var.output_directory
  vm_name          = var.vm_name

  # The ISO's BIOS menu: select "Install Rocky Linux", append a text-mode kickstart install with a
  # serial console. The kickstart fetches the build key from the same HTTP server.
  boot_wait = "5s"
  boot_command = [
    "<up><tab><wait>",
    " inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg console=tty0 console=ttyS0,115200n8",
    "<enter>",
  ]
  qemuargs = [
    ["-serial", "file:${var.serial_log}"],
  ]

  communicator         = "ssh"
  ssh_username         = "root"
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = var.ssh_timeout
  shutdown_command     = "systemctl poweroff"
}

build {
  sources = ["source.qemu.rocky8-base"]

  provisioner "shell" {
    inline = [
      "set -eu",
      "echo \"kernel $(uname -r) on $(. /etc/os-release && echo $PRETTY_NAME)\"",
    ]
  }

  provisioner "ansible" {
    playbook_file    = "${path.root}/ansible/playbook.yml"
    user             = "root"
    use_proxy        = false
    extra_arguments  = ["--extra-vars", local.ansible_extra_vars]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0"]
  }

  post-processor "manifest" {
    output     = var.packer_manifest
    strip_path = true
  }
}
