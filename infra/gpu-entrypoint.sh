#!/bin/sh
# Entry point of the gpu-worker image: makes sure the Vulkan loader finds NVIDIA's driver, then runs
# the command. The NVIDIA container runtime puts nvidia_icd.json under /etc/vulkan/icd.d or
# /usr/share/vulkan/icd.d; some hosts mount the driver under /usr/local/nvidia instead, where the
# loader does not look: point it there (VK_DRIVER_FILES) unless the caller already chose.
set -e
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then
  found=""
  for dir in /etc/vulkan/icd.d /usr/share/vulkan/icd.d; do
    if ls "$dir"/nvidia*.json >/dev/null 2>&1; then found=1; fi
  done
  if [ -z "$found" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
fi
exec "$@"
