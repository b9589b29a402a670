#!/usr/bin/env bash
# Training on the Lyapunov spectrum on a SLURM cluster: many networks (samples) per workflow,
# each sample one unit of the sweep. Every workflow is split into array tasks (a chunk of
# samples per task) and aggregated by `nrmkit collect` in a job that waits for the array.
#
#   bash bash/training_sweeps.sh --dry-run   # print what would be submitted, run nothing
#   bash bash/training_sweeps.sh             # submit: array jobs + a dependent collect job
#   bash bash/training_sweeps.sh --local     # no SLURM: the same runs in local subprocesses
#
# Each sample draws its network and initial conditions from (SEED, sample) and trains alone:
# the numbers equal a serial run with the same seed, however the samples are chunked. A task
# that hits its time limit keeps its finished samples and the epoch checkpoint of the one in
# progress; resubmitting the array (same command) continues from there. Variables: RUNS,
# SEED, SAMPLES (networks per workflow, default 20), TASKS (array tasks per workflow,
# default 10), PARTITION, TIME, CPUS. Options also come from NRMKIT_<OPTION> variables or a
# TOML file given with --config.
set -euo pipefail

RUNS="${RUNS:-data/runs/training_sweeps}"
SEED="${SEED:-0}"
SAMPLES="${SAMPLES:-20}"
TASKS="${TASKS:-10}"
PARTITION="${PARTITION:-}"
TIME="${TIME:-04:00:00}"
CPUS="${CPUS:-4}"

mode="submit"
case "${1:-}" in
    --dry-run) mode="dry" ;;
    --local) mode="local" ;;
    "") ;;
    *) echo "usage: $0 [--dry-run | --local]" >&2; exit 2 ;;
esac

# Random networks (N = 200, g = 3) trained to the edge of chaos: gains and shifts, top 10.
RANDOM_NETWORKS=(train_rd_model --n 200 --g 3 --nle 10 --loss MSE --target 0 --n_epochs 100
                 --n_samples "$SAMPLES" --seed "$SEED"
                 --output-dir "$RUNS/train_rd_model/seed_$SEED")
# The shipped fly mushroom body, one gain and one shift per neurotransmitter population.
FLY_POPULATIONS=(train_flybrain_pop --subpopulation neurotransmitter --nle 10 --loss MSE
                 --target 0 --n_epochs 100 --n_samples "$SAMPLES" --seed "$SEED"
                 --output-dir "$RUNS/train_flybrain_pop/seed_$SEED")

show() { printf '%q ' "$@"; printf '\n'; }

submit_array() {     # submit_array NAME COMMAND...: array of $TASKS tasks, then collect
    local name="$1"; shift
    local folder
    folder="${*: -1}"                # the run folder is the last argument
    local partition=()
    [[ -n "$PARTITION" ]] && partition=(--partition "$PARTITION")
    local task_command
    task_command="$(show "$@") --task_count $TASKS --task_index \$SLURM_ARRAY_TASK_ID --quiet"
    local array=(sbatch --parsable --job-name "nrmkit-$name" --array "0-$((TASKS - 1))"
                 --cpus-per-task "$CPUS" --time "$TIME" --output "logs/%x_%A_%a.out"
                 "${partition[@]}" --export "ALL,OMP_NUM_THREADS=$CPUS" --wrap "$task_command")
    if [[ "$mode" == "dry" ]]; then
        show "${array[@]}"
        show sbatch --dependency "afterok:<array job id>" --job-name "nrmkit-$name-collect" \
            "${partition[@]}" --wrap "nrmkit collect $folder"
        return
    fi
    mkdir -p logs
    local job
    job="$("${array[@]}")"
    sbatch --dependency "afterok:$job" --job-name "nrmkit-$name-collect" "${partition[@]}" \
        --output "logs/%x_%j.out" --wrap "nrmkit collect $folder"
    echo "$name: array job $job ($TASKS tasks), collect after it: $folder"
}

run_local() {        # the whole workflow here, in local subprocesses (submitit)
    if [[ "$mode" == "dry" ]]; then show "$@" --executor local --jobs 2; return; fi
    "$@" --executor local --jobs 2
}

if [[ "$mode" == "local" ]]; then
    run_local "${RANDOM_NETWORKS[@]}"
    run_local "${FLY_POPULATIONS[@]}"
else
    submit_array train_rd_model "${RANDOM_NETWORKS[@]}"
    submit_array train_flybrain_pop "${FLY_POPULATIONS[@]}"
fi
