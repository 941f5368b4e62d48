#!/bin/sh
# mmdebstrap --customize-hook for the default sandbox image. Runs on the host once every package is
# installed; $1 is the new root filesystem. Part of the recipe hash: editing it rebuilds the image.
set -eu
root="$1"

# The sandbox user, as in Daytona's images. The image sets no USER: the runner picks one per sandbox.
chroot "$root" groupadd --gid 1000 daytona
chroot "$root" useradd --uid 1000 --gid 1000 --create-home --home-dir /home/daytona \
    --shell /bin/bash daytona

# pip installs into the image's python, as in Daytona's images: a sandbox is the user's own computer.
rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED

# The image trusts what the host trusts (e.g. the CA of a TLS-inspecting proxy), so package indexes the
# host reaches over HTTPS are reachable from sandboxes and snapshot builds too.
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/corral-host-trust.crt"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi

# Docker provides these per container: keep the build host's values out of the image.
printf 'sandbox\n' > "$root/etc/hostname"
: > "$root/etc/resolv.conf"
# apt options passed for the build only (e.g. the host's proxy) stay on the host.
rm -f "$root/etc/apt/apt.conf.d/99mmdebstrap"

# Nothing that apt or dpkg recreate on demand (mmdebstrap already drops the package lists).
rm -f "$root"/var/cache/apt/*.bin "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
find "$root/var/log" -type f -delete
