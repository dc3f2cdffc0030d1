#!/bin/sh
# docker.setup_script of the iris bento: runs as root while `bentoml containerize` builds the image,
# after the packages (the modelrollout wheel among them) are installed. Makes `modelrollout-batch`
# (the operator's batch CronJob command) the wrapper bin/modelrollout-batch of the bento sources:
# it replaces the console script the wheel installed into the image's Python (first on PATH), or,
# without one, goes into /usr/local/bin.
set -eu
wrapper="${BENTO_PATH:-/home/bentoml/bento}/src/bin/modelrollout-batch"
target="$(command -v modelrollout-batch || echo /usr/local/bin/modelrollout-batch)"
ln -sf "$wrapper" "$target"
