#!/usr/bin/env bash
# The main job: train a BNN on Fashion-MNIST on the best adapter found.
# Installs a software Vulkan driver when no Vulkan device exists, and the data set package.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
data=$([ -d /usr/share/datasets/fashion-mnist ] || echo dataset-fashion-mnist)
# shellcheck disable=SC2046
apt_install $(vulkan_packages) $data
exec cargo run --release --locked --bin bitgrad -- train "$@"
