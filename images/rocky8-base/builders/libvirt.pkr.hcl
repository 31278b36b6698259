# rocky8-base, libvirt builder (packer-plugin-libvirt, Packer >= 1.7): clones the hypervisor's
# vanilla volume into the artifact volume, boots it on the managed network, provisions over SSH
# (through the bastion when one is configured). osbake stages this file for --builder libvirt;
# Packer 1.6.6 cannot load it. Argument names follow the plugin's HCL spec (checked by osbake's
# tests: test/integration/rocky-static.test.ts). The artifact stays in the pool as volume_name;
# osbake downloads it with virsh vol-download.
source "libvirt" "rocky8-base" {
  libvirt_uri = var.libvirt_uri
  domain_name = var.domain_name
  vcpu        = var.cpus
  memory      = var.memory

  network_interface {
    type    = "managed"
    network = var.libvirt_network
    alias   = "communicator"
  }
  # The VM's address comes from the managed network's DHCP lease (no guest agent needed).
  network_address_source = "lease"

  volume {
    alias  = "artifact"
    pool   = var.libvirt_pool
    name   = var.volume_name
    bus    = "virtio"
    format = "qcow2"

    source {
      type   = "cloning"
      pool   = var.libvirt_pool
      volume = var.libvirt_vanilla_volume
    }
  }

  communicator {
    communicator                 = "ssh"
    ssh_username                 = "root"
    ssh_private_key_file         = var.ssh_private_key_file
    ssh_timeout                  = var.ssh_timeout
    ssh_bastion_host             = var.ssh_bastion_host
    ssh_bastion_port             = var.ssh_bastion_port
    ssh_bastion_username         = var.ssh_bastion_username
    ssh_bastion_private_key_file = var.ssh_bastion_private_key_file
  }

  shutdown_mode    = "acpi"
  shutdown_timeout = "5m"
}

build {
  sources = ["source.libvirt.rocky8-base"]

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
    extra_arguments  = ["--extra-vars", local.ansible_extra_vars, "--ssh-extra-args", var.ansible_ssh_extra_args]
    ansible_env_vars = ["ANSIBLE_HOST_KEY_CHECKING=False", "ANSIBLE_NOCOLOR=1", "ANSIBLE_FORCE_COLOR=0"]
  }

  post-processor "manifest" {
    output     = var.packer_manifest
    strip_path = true
  }
}
