#!/usr/bin/env bash
# Train two Transformer decoders at once on one CUDA GPU inside a wall-time budget (pretrain on all the
# music with POP909, then finetune on the labelled music with emotion), as a lent GPU machine runs it:
#
#   OUT=/tmp/gpu MINUTES=6.5 bash installation/training/gpu_train_transformer.sh
#
# Needs .cache/prep/music_pop909.npz (python -m installation.training prepare-music --pop909) and a CUDA
# build of torch; not ../shared/data. A = 6 blocks x 384 (11.4M parameters), B = 6 x 256 (cheaper to
# run live); both train with bf16 autocast, batch 64 x 512 events, and share the GPU.
# Writes to $OUT: A/ and B/ (finetune.N.pt: the best weights in fp16, files under 15 MiB, rewritten at
# each new best, so a killed run still leaves weights; summary.json), train_A.log and train_B.log
# (device, tokens/s, the loss curve). Back here: python -m installation.training.shards OUT/A runs/gpu_A,
# then export --decoder transformer --run runs/gpu_A (docs/TRAINING.md, "Training on a GPU").
set -u
OUT=${OUT:?set OUT to the folder for weights and logs}
MINUTES=${MINUTES:-6.5}
export PYTHONUNBUFFERED=1 TQDM_DISABLE=1
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
DEVICE=${DEVICE:-cuda}          # DEVICE=cpu EXTRA="--wall-budget --layers 1 ..." : a dry run of this script on a CPU
EXTRA=${EXTRA:-}
if [ "$DEVICE" = cuda ]; then
    python3 -c 'import torch; assert torch.cuda.is_available(), "no CUDA"; print("torch", torch.__version__, torch.cuda.get_device_name())' || exit 3
fi
[ -f .cache/prep/music_pop909.npz ] || { echo "no .cache/prep/music_pop909.npz"; exit 3; }

train() {            # name, then the model's options
    local name=$1; shift
    mkdir -p "$OUT/$name"
    python3 -m installation.training train --decoder transformer --pop909 --device "$DEVICE" --threads 4 \
        --window 512 --seq-len 512 --batch 64 --warmup 200 --budget-min "$MINUTES" --finetune-share "${FT_SHARE:-0.3}" \
        --pretrain-steps 100000 --finetune-steps 100000 --eval-every 250 --data "$PWD" \
        --run "runs/gpu_$name" --snapshot-dir "$OUT/$name" "$@" $EXTRA > "$OUT/train_$name.log" 2>&1
    echo "train $name: exit $?" >> "$OUT/train_$name.log"
    cp "runs/gpu_$name/summary.json" "$OUT/$name/" 2>/dev/null
}
SIZES=${SIZES:-A B}             # SIZES=B: the 6x256 alone, with the whole GPU
start=$(date +%s)
for n in $SIZES; do
    case $n in
        A) train A --layers 6 --d-model 384 --heads 6 & ;;
        B) train B --layers 6 --d-model 256 --heads 4 & ;;
    esac
done
wait
echo "done in $(( $(date +%s) - start )) s"
# 8 files at most come back: with both sizes, keep only the fine-tuned weights
[ "$SIZES" = B ] || for n in $SIZES; do [ -f "$OUT/$n/finetune.0.pt" ] && rm -f "$OUT/$n"/pretrain.*.pt; done
for n in $SIZES; do echo "== $n"; grep -E "training the|budget|step [0-9]+:|early stop|NLL per event|exit" "$OUT/train_$n.log"; done
ls -lR "$OUT"
