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

# sweep_mode, show, submit_array and run_local: one copy for the three sweep scripts
source "$(dirname "${BASH_SOURCE[0]}")/lib/array_sweeps.sh"
sweep_mode "$@"

# Random networks (N = 200, g = 3) trained to the edge of chaos: gains and shifts, top 10.
RANDOM_NETWORKS=(train_rd_model --n 200 --g 3 --nle 10 --loss MSE --target 0 --n_epochs 100
                 --n_samples "$SAMPLES" --seed "$SEED"
                 --output-dir "$RUNS/train_rd_model/seed_$SEED")
# The shipped fly mushroom body, one gain and one shift per neurotransmitter population.
FLY_POPULATIONS=(train_flybrain_pop --subpopulation neurotransmitter --nle 10 --loss MSE
                 --target 0 --n_epochs 100 --n_samples "$SAMPLES" --seed "$SEED"
                 --output-dir "$RUNS/train_flybrain_pop/seed_$SEED")

if [[ "$mode" == "local" ]]; then
    run_local "${RANDOM_NETWORKS[@]}"
    run_local "${FLY_POPULATIONS[@]}"
else
    submit_array train_rd_model "$TASKS" "${RANDOM_NETWORKS[@]}"
    submit_array train_flybrain_pop "$TASKS" "${FLY_POPULATIONS[@]}"
fi
