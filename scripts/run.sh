#!/usr/bin/env bash
# run.sh — sets everything up (setup.sh: packages, the MNIST digits, the
# float build) and runs the main job: the book's MultiLayerNetExtend
# (5 hidden layers of 100, He init, Batch Norm) trained with Adam on
# Fashion-MNIST for 10 epochs, test accuracy per epoch.
#
#   scripts/run.sh                 the main job
#   scripts/run.sh ARGS...         tapegrad train ARGS... instead
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh" --config float
if [ $# -eq 0 ]; then
  set -- --model multi-layer-net --optimizer adam --batchnorm --epochs 10 --data fashion-mnist
fi
exec "$root/build/tools/tapegrad" train "$@"
