#!/bin/sh
# docker.setup_script of the iris bento: runs as root while `bentoml containerize` builds the image.
# Puts `modelrollout-batch` (bin/modelrollout-batch of the bento sources, copied in later) on PATH.
set -eu
ln -sf "${BENTO_PATH:-/home/bentoml/bento}/src/bin/modelrollout-batch" /usr/local/bin/modelrollout-batch
