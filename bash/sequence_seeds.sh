#!/usr/bin/env bash
# Adaptive nonlinearities and GLIFR neurons over many seeds on a SLURM cluster. Each workflow
# is one sweep whose units are seeds (smnist --n_seeds) or trials (train_glifr --ntrials,
# trial k draws from its own streams (seed, k, purpose)): an array of tasks (one chunk of seeds each) writes the parts
# into one run folder, and `nrmkit collect` in a job that waits for the array aggregates
# them (mean ± std over seeds, every seed's curves).
#
#   bash bash/sequence_seeds.sh --dry-run   # print what would be submitted, run nothing
#   bash bash/sequence_seeds.sh             # submit: array jobs + a dependent collect job
#   bash bash/sequence_seeds.sh --local     # no SLURM: the same sweeps in local subprocesses
#
# smnist writes every seed's complete run (model, checkpoint, figures) to
# $RUNS/smnist/seeds/seed-<s>; a task that hits its time limit keeps its finished seeds and
# the checkpoint of the one in progress, and resubmitting the array continues from there.
# Variables: RUNS, SEED (first seed, default 0), SEEDS (how many, default 5), PARTITION, TIME,
# CPUS. Options also come from NRMKIT_<OPTION> variables or a TOML file given with --config.
set -euo pipefail

RUNS="${RUNS:-data/runs/sequence_seeds}"
SEED="${SEED:-0}"
SEEDS="${SEEDS:-5}"
PARTITION="${PARTITION:-}"
TIME="${TIME:-04:00:00}"
CPUS="${CPUS:-4}"

# sweep_mode, show, submit_array and run_local: one copy for the three sweep scripts
source "$(dirname "${BASH_SOURCE[0]}")/lib/array_sweeps.sh"
sweep_mode "$@"

# RNN with the per-neuron gamma nonlinearity on the bundled digits, one row per step.
SMNIST=(smnist --net-type RNN --nonlin gamma2 --input rows --nhid 64 --lr 3e-3 --batch 32
        --epochs 25 --seed "$SEED" --n_seeds "$SEEDS" --output-dir "$RUNS/smnist")
# GLIFR neurons with learned heterogeneity on the sine task.
GLIFR=(train_glifr --task sine --variant lhet --hidden 64 --epochs 1000 --lr 3e-3
       --seed "$SEED" --ntrials "$SEEDS" --output-dir "$RUNS/train_glifr_sine")

if [[ "$mode" == "local" ]]; then
    run_local "${SMNIST[@]}"
    run_local "${GLIFR[@]}"
else
    submit_array smnist "$SEEDS" "${SMNIST[@]}"
    submit_array train_glifr "$SEEDS" "${GLIFR[@]}"
fi
