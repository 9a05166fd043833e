#!/usr/bin/env bash
# Build, offline, a CPU image that follows SageMaker's training contract, for `smlaunch local --docker`.
#
#   docker/build-local-image.sh            # prints the image tag on its last line
#
# No registry is needed: a Debian rootfs from debootstrap becomes the image through `docker import`. Inside:
# Debian's Python 3.11, torch 2.13.0 (CPU), the SageMaker training toolkit (sagemaker-training) and its PyTorch
# framework module (sagemaker-pytorch-training) from PyPI, and the `train` entry SageMaker runs. The tag names a
# hash of this script and docker/local-image-requirements.txt: an image already built from the same inputs is
# reused, not rebuilt. Needs root (debootstrap, chroot), a running Docker daemon, pip and a Debian mirror.
#
# Environment: SMLAUNCH_IMAGE_TAG (default smlaunch-local-cpu:<hash>), SMLAUNCH_DEBIAN_MIRROR (default: the
# first mirror in /etc/apt, else deb.debian.org), SMLAUNCH_DEBIAN_SUITE (default bookworm: Python 3.11).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements="$here/local-image-requirements.txt"
suite=${SMLAUNCH_DEBIAN_SUITE:-bookworm}
default_mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${SMLAUNCH_DEBIAN_MIRROR:-${default_mirror:-http://deb.debian.org/debian}}
inputs=$(cat "${BASH_SOURCE[0]}" "$requirements" <(echo "$suite") | sha256sum | cut -c1-12)
tag=${SMLAUNCH_IMAGE_TAG:-smlaunch-local-cpu:$inputs}

say() { echo "build-local-image: $*" >&2; }

if docker image inspect "$tag" >/dev/null 2>&1; then
    say "reusing $tag (built from the same inputs)"
    echo "$tag"
    exit 0
fi
for tool in debootstrap docker pip chroot; do
    command -v "$tool" >/dev/null || { say "needs $tool (apt-get install docker.io debootstrap)"; exit 2; }
done
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap and chroot)"; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/smlaunch-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

say "wheels: $(grep -v '^#' "$requirements" | xargs)"
pip wheel --quiet --disable-pip-version-check --wheel-dir "$work/wheels" -r "$requirements" >&2

say "rootfs: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include=python3,python3-pip,ca-certificates,procps \
    "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; exit 1; }

say "installing the wheels into the rootfs"
mkdir -p "$work/rootfs/tmp/wheels"
cp "$work"/wheels/*.whl "$requirements" "$work/rootfs/tmp/wheels/"
chroot "$work/rootfs" /usr/bin/python3 -m pip install --quiet --no-index --no-cache-dir --break-system-packages \
    --disable-pip-version-check --find-links /tmp/wheels -r /tmp/wheels/local-image-requirements.txt >&2
chroot "$work/rootfs" /bin/sh -c 'command -v train torchrun' >&2
rm -rf "$work/rootfs/tmp/wheels" "$work/rootfs/var/cache/apt/archives"/*.deb "$work/rootfs/var/lib/apt/lists"/*

say "docker import as $tag"
tar -C "$work/rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV SAGEMAKER_TRAINING_MODULE=sagemaker_pytorch_container.training:main' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8' \
    --change "LABEL org.smlaunch.inputs=$inputs org.smlaunch.python=3.11 org.smlaunch.torch=2.13.0+cpu" \
    --change 'WORKDIR /opt/ml/code' \
    - "$tag" >&2
say "built $tag in $(($(date +%s) - started)) s"
echo "$tag"
