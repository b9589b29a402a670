#!/usr/bin/env bash
# Training on the Lyapunov spectrum, one array task per seed (random networks and the fly
# connectome).
#
#   bash bash/training_sweeps.sh --dry-run    # print the sbatch command and each task's commands
#   bash bash/training_sweeps.sh              # submit the array (SEEDS tasks, one seed each)
#   bash bash/training_sweeps.sh --task 3     # run seed 3 here (what one array task does)
#
# Each seed writes its own run folder under $RUNS/<workflow>/seed_<seed>. Variables:
# RUNS, SEEDS (default 5), PARTITION, TIME, CPUS. Options also come from NRMKIT_<OPTION>
# variables or a TOML file given with --config.
set -euo pipefail

RUNS="${RUNS:-data/runs/training_sweeps}"
SEEDS="${SEEDS:-5}"
PARTITION="${PARTITION:-}"
TIME="${TIME:-04:00:00}"
CPUS="${CPUS:-4}"

commands() {        # commands SEED: the runs of one array task
    local seed="$1"
    echo train_rd_model --n 200 --g 3 --nle 10 --loss MSE --target 0 --n_epochs 100 --seed "$seed" --output-dir "$RUNS/train_rd_model/seed_$seed" --overwrite --quiet
    echo train_flybrain_pop --nle 10 --loss MSE --target 0 --n_epochs 100 --seed "$seed" --output-dir "$RUNS/train_flybrain_pop/seed_$seed" --overwrite --quiet
}

show() { printf '%q ' "$@"; printf '\n'; }

case "${1:-}" in
    --dry-run)
        partition=()
        [[ -n "$PARTITION" ]] && partition=(--partition "$PARTITION")
        show sbatch --array "0-$((SEEDS - 1))" --cpus-per-task "$CPUS" --time "$TIME" \
            --output "logs/%x_%A_%a.out" "${partition[@]}" "$0" --task
        for ((seed = 0; seed < SEEDS; seed++)); do
            commands "$seed" | sed "s/^/task $seed: /"
        done ;;
    --task)
        export OMP_NUM_THREADS="${SLURM_CPUS_PER_TASK:-$CPUS}"
        commands "${2:-${SLURM_ARRAY_TASK_ID:?--task needs a seed (or SLURM_ARRAY_TASK_ID)}}" | while read -r line; do
            echo "+ $line" >&2
            eval "$line"
        done ;;
    "")
        mkdir -p logs
        partition=()
        [[ -n "$PARTITION" ]] && partition=(--partition "$PARTITION")
        sbatch --array "0-$((SEEDS - 1))" --cpus-per-task "$CPUS" --time "$TIME" \
            --output "logs/%x_%A_%a.out" "${partition[@]}" "$0" --task ;;
    *) echo "usage: $0 [--dry-run | --task SEED]" >&2; exit 2 ;;
esac
